/*
 * ctx.h - the context switch between tasks and the scheduler.
 *
 * A context is what a suspended task or scheduler needs to resume: on
 * x86-64, its stack pointer (the resume address is on the stack), frame
 * pointer and the callee-saved control words of the floating-point units
 * (MXCSR and the x87 control word, which the System V ABI makes
 * callee-saved). The switch is a call to ax__ctx_switch
 * (ctx_x86_64.S) from inline assembly that declares every other register
 * clobbered, so the compiler saves only the callee-saved registers the
 * calling function holds, once, in that function's own prologue (a plain
 * call saved all six again inside the switch, on top of the caller's own
 * saves). The switch stays a function of its own so that profiles see
 * one call per switch (docs/profiles.md). Elsewhere (AArch64) the switch
 * is ctx_<arch>.S's function, which saves the callee-saved set on the
 * stack.
 */
#ifndef AX_CTX_H
#define AX_CTX_H

#include <stdint.h>

#if defined(__x86_64__)

struct ax__ctx {
	void *sp;       /* stack pointer; the resume address is at sp[0] */
	void *fp;       /* %rbp (the frame pointer in builds that keep one) */
	uint32_t mxcsr; /* SSE control and status */
	uint16_t fpcw;  /* x87 control word */
};

/* ctx_x86_64.S: save the running context in *from (its resume address
 * is the return address) and return into *to; reached only through
 * ax__ctx_jump. ax__ctx_trampoline is the first code of a new context. */
void ax__ctx_switch(struct ax__ctx *from, struct ax__ctx *to);
void ax__ctx_trampoline(void);

/* Set c up to start entry(arg) on the stack whose top (highest address)
 * is top: ax__ctx_switch returns into ax__ctx_trampoline, which pops arg
 * and entry and calls entry(arg) with a 16-byte aligned stack, the
 * default floating-point control words and a zero frame pointer (the end
 * of the frame chain). */
static inline void ax__ctx_init(struct ax__ctx *c, void *top,
				void (*entry)(void *), void *arg)
{
	void **sp = (void **)((uintptr_t)top & ~(uintptr_t)15) - 3;
	sp[0] = (void *)ax__ctx_trampoline;
	sp[1] = arg;
	sp[2] = (void *)entry;
	c->sp = sp;
	c->fp = 0;
	c->mxcsr = 0x1F80;
	c->fpcw = 0x037F;
}

/* Save the running context in *from and resume *to. Returns when another
 * context switches back to *from. Every general-purpose register but
 * %rsp, %rbp (saved in the context), %rdi and %rsi (operands, marked
 * changed), and every vector register, is declared clobbered: the
 * compiler keeps no value in them across the switch. The call pushes its
 * return address below %rsp, where a leaf function may keep data (the
 * red zone): sched.c, the only file that switches, is built with
 * -mno-red-zone (CMakeLists.txt). */
static inline __attribute__((always_inline))
void ax__ctx_jump(struct ax__ctx *from, struct ax__ctx *to)
{
	__asm__ volatile(
		"call ax__ctx_switch"
		: "+D"(from), "+S"(to)
		:
		: "rax", "rbx", "rcx", "rdx", "r8", "r9", "r10", "r11", "r12",
		  "r13", "r14", "r15", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
		  "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
		  "xmm12", "xmm13", "xmm14", "xmm15",
#if defined(__AVX512F__)
		  "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21",
		  "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27",
		  "xmm28", "xmm29", "xmm30", "xmm31",
		  "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7",
#endif
		  "cc", "memory");
}

#else

struct ax__ctx {
	void *sp; /* the callee-saved registers are on the stack below */
};

/* ctx_<arch>.S */
void ax__ctx_switch(void **save_sp, void *to_sp);
void *ax__ctx_make(void *top, void (*entry)(void *), void *arg);

static inline void ax__ctx_init(struct ax__ctx *c, void *top,
				void (*entry)(void *), void *arg)
{
	c->sp = ax__ctx_make(top, entry, arg);
}

static inline void ax__ctx_jump(struct ax__ctx *from, struct ax__ctx *to)
{
	ax__ctx_switch(&from->sp, to->sp);
}

#endif

#endif
