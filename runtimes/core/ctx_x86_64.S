/* ctx_x86_64.S - the x86-64 context switch: saves the callee-saved registers,
 * MXCSR and the x87 control word on the current stack, stores the stack
 * pointer, and resumes another stack (System V ABI). No system call. */
	.text
	.globl	ax__ctx_switch
	.type	ax__ctx_switch, @function
/* void ax__ctx_switch(void **save_sp, void *to_sp) */
ax__ctx_switch:
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)
	movq	%rsi, %rsp
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.size	ax__ctx_switch, .-ax__ctx_switch

/* First code a new context runs: entry(arg), which never returns. */
	.globl	ax__ctx_trampoline
	.type	ax__ctx_trampoline, @function
ax__ctx_trampoline:
	movq	%r12, %rdi
	callq	*%r13
	ud2
	.size	ax__ctx_trampoline, .-ax__ctx_trampoline

/* void *ax__ctx_make(void *top, void (*entry)(void *), void *arg):
 * lay out a frame that ax__ctx_switch resumes into ax__ctx_trampoline with
 * a 16-byte aligned stack at the call. Returns the initial stack pointer. */
	.globl	ax__ctx_make
	.type	ax__ctx_make, @function
ax__ctx_make:
	andq	$-16, %rdi
	leaq	ax__ctx_trampoline(%rip), %rax
	movq	%rax, -8(%rdi)
	movq	$0, -16(%rdi)
	movq	$0, -24(%rdi)
	movq	%rdx, -32(%rdi)
	movq	%rsi, -40(%rdi)
	movq	$0, -48(%rdi)
	movq	$0, -56(%rdi)
	movl	$0x1F80, -64(%rdi)
	movw	$0x037F, -60(%rdi)
	leaq	-64(%rdi), %rax
	ret
	.size	ax__ctx_make, .-ax__ctx_make

	.section .note.GNU-stack,"",@progbits
