/* ctx_x86_64.S - the x86-64 context switch (called from ctx.h's inline
 * assembly, which makes the caller save the callee-saved registers it
 * holds) and the first code of a new context. No system call. */
	.text
	.globl	ax__ctx_switch
	.hidden	ax__ctx_switch
	.type	ax__ctx_switch, @function
/* void ax__ctx_switch(struct ax__ctx *from, struct ax__ctx *to): save
 * the stack pointer (the return address on top), %rbp, MXCSR and the x87
 * control word in *from, load *to's and return into it. */
ax__ctx_switch:
	stmxcsr	16(%rdi)
	fnstcw	20(%rdi)
	movq	%rbp, 8(%rdi)
	movq	%rsp, (%rdi)
	movq	(%rsi), %rsp
	movq	8(%rsi), %rbp
	ldmxcsr	16(%rsi)
	fldcw	20(%rsi)
	ret
	.size	ax__ctx_switch, .-ax__ctx_switch

/* Returned into by the first switch to a new context, with arg then
 * entry on the stack (ax__ctx_init): entry(arg), which never returns. */
	.globl	ax__ctx_trampoline
	.hidden	ax__ctx_trampoline
	.type	ax__ctx_trampoline, @function
ax__ctx_trampoline:
	popq	%rdi
	popq	%rax
	callq	*%rax
	ud2
	.size	ax__ctx_trampoline, .-ax__ctx_trampoline

	.section .note.GNU-stack,"",@progbits
