// Rootfs: the container filesystem (mount plan, devices, pivot_root, masked and read-only paths).
