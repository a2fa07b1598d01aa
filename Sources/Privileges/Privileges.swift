// Privileges: rlimits, user and groups, capabilities, no_new_privs, seccomp.
