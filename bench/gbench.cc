// gbench.cc - the C API of gbench.h implemented on Google Benchmark: a
// registered C function becomes a benchmark whose State it drives through
// a gb_state handle.
#include "gbench.h"

#include <cerrno>
#include <cstdio>
#include <new>
#include <string>

#include <benchmark/benchmark.h>

struct gb_state {
	benchmark::State *s;
	bool first;  // gb_loop not yet called in this call of the function
};

namespace {

void trampoline(benchmark::State &state, gb_fn fn, void *arg)
{
	gb_state st{&state, true};
	fn(&st, arg);
	// a function that skipped before looping must still end the run
	if (st.first && !state.error_occurred())
		state.SkipWithError("the benchmark function never called gb_loop");
}

}  // namespace

extern "C" int gb_register(const char *name, gb_fn fn, void *arg)
{
	try {
		benchmark::RegisterBenchmark(name, trampoline, fn, arg);
	} catch (const std::bad_alloc &) {
		return -ENOMEM;
	}
	return 0;
}

extern "C" void gb_context(const char *key, const char *value)
{
	benchmark::AddCustomContext(key, value);
}

extern "C" bool gb_loop(gb_state *st)
{
	bool again = st->s->KeepRunningBatch(st->s->max_iterations);
	st->first = false;
	return again;
}

extern "C" uint64_t gb_iterations(const gb_state *st)
{
	return static_cast<uint64_t>(st->s->max_iterations);
}

extern "C" void gb_pause(gb_state *st)
{
	st->s->PauseTiming();
}

extern "C" void gb_resume(gb_state *st)
{
	st->s->ResumeTiming();
}

extern "C" void gb_items(gb_state *st, int64_t n)
{
	st->s->SetItemsProcessed(n);
}

extern "C" void gb_counter(gb_state *st, const char *name, double value,
			   bool per_iteration)
{
	st->s->counters[name] = benchmark::Counter(
		value, per_iteration ? benchmark::Counter::kAvgIterations
				     : benchmark::Counter::kDefaults);
}

extern "C" void gb_label(gb_state *st, const char *label)
{
	st->s->SetLabel(label);
}

extern "C" void gb_skip(gb_state *st, const char *msg)
{
	st->s->SkipWithError(msg);
	st->first = false;
}

extern "C" int gb_main(int argc, char **argv)
{
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 2;
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return 0;
}
