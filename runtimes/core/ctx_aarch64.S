/* ctx_aarch64.S - the AArch64 context switch: saves x19-x30 and d8-d15 (the
 * AAPCS64 callee-saved set) on the current stack, stores the stack pointer,
 * and resumes another stack. No system call. */
	.text
	.globl	ax__ctx_switch
	.type	ax__ctx_switch, %function
/* void ax__ctx_switch(void **save_sp, void *to_sp) */
ax__ctx_switch:
	sub	sp, sp, #176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mov	x2, sp
	str	x2, [x0]
	mov	sp, x1
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #176
	ret
	.size	ax__ctx_switch, .-ax__ctx_switch

/* First code a new context runs: entry(arg), which never returns. */
	.globl	ax__ctx_trampoline
	.type	ax__ctx_trampoline, %function
ax__ctx_trampoline:
	mov	x0, x19
	blr	x20
	brk	#0
	.size	ax__ctx_trampoline, .-ax__ctx_trampoline

/* void *ax__ctx_make(void *top, void (*entry)(void *), void *arg) */
	.globl	ax__ctx_make
	.type	ax__ctx_make, %function
ax__ctx_make:
	and	x0, x0, #~15
	sub	x0, x0, #176
	str	x2, [x0, #0]
	str	x1, [x0, #8]
	stp	xzr, xzr, [x0, #80]
	adr	x3, ax__ctx_trampoline
	str	x3, [x0, #88]
	ret
	.size	ax__ctx_make, .-ax__ctx_make

	.section .note.GNU-stack,"",%progbits
