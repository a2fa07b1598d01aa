# minicontainer's exec stub for x86_64 (Sources/Runtime/ExecStub.swift): a
# whole ELF file, header included, 265 bytes. `scripts/exec-stub.sh` turns it
# into the Swift array; ExecStubTests checks the two agree.
#
# The init of `run` executes it from a sealed memfd as its last step, so that
# the container's program starts from a process whose /proc/self/exe is that
# memfd, not the runtime's binary (CVE-2019-5736: `#!/proc/self/exe`).
# argv: [name, path, msg ENOENT, msg EACCES, msg ENOEXEC, msg other,
#        the program's argv...]; the environment is the program's.
# It does execve(path, &argv[6], envp); if that fails, it writes the message
# for the errno to fd 2 and exits 127 (ENOENT) or 126, as the init would.
# Called otherwise (fewer than 7 arguments, as the interpreter of a
# `#!/proc/self/exe` script) it exits 127 at once.
        .set base, 0x400000
        .text
        .globl _start
ehdr:
        .byte 0x7f, 'E', 'L', 'F', 2, 1, 1, 0
        .quad 0
        .word 2                 # ET_EXEC
        .word 62                # EM_X86_64
        .long 1
        .quad base + (_start - ehdr)
        .quad phdr - ehdr
        .quad 0
        .long 0
        .word 64                # e_ehsize
        .word 56                # e_phentsize
        .word 1                 # e_phnum
        .word 0, 0, 0
phdr:
        .long 1                 # PT_LOAD
        .long 5                 # R+X
        .quad 0
        .quad base
        .quad base
        .quad end - ehdr
        .quad end - ehdr
        .quad 0x1000
_start:
        mov     (%rsp), %rbx            # argc
        cmp     $7, %rbx
        jb      bad
        lea     8(%rsp), %r12           # argv
        lea     8(%r12,%rbx,8), %rdx    # envp
        mov     8(%r12), %rdi           # path
        lea     48(%r12), %rsi          # the program's argv
        mov     $59, %eax               # execve
        syscall
        neg     %rax
        mov     %rax, %r13              # errno
        mov     $5, %ecx                # message index: other
        cmp     $2, %r13                # ENOENT
        jne     1f
        mov     $2, %ecx
1:      cmp     $13, %r13               # EACCES
        jne     2f
        mov     $3, %ecx
2:      cmp     $8, %r13                # ENOEXEC
        jne     3f
        mov     $4, %ecx
3:      mov     (%r12,%rcx,8), %rsi
        xor     %edx, %edx
4:      cmpb    $0, (%rsi,%rdx)
        je      5f
        inc     %rdx
        jmp     4b
5:      mov     $2, %edi
        mov     $1, %eax                # write
        syscall
        mov     $126, %edi
        cmp     $2, %r13
        jne     6f
        mov     $127, %edi
6:      mov     $231, %eax              # exit_group
        syscall
bad:    mov     $127, %edi
        mov     $231, %eax
        syscall
end:
