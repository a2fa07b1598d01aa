#define _GNU_SOURCE
#include "cshim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

// Layer unpacking: calls on a name in a directory fd that never follow a
// symlink in that name, with a fallback for kernels before the *at call.

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef SYS_setxattrat
#define SYS_setxattrat 463
#endif
#ifndef SYS_getxattrat
#define SYS_getxattrat 464
#endif
#ifndef SYS_listxattrat
#define SYS_listxattrat 465
#endif

struct mc_xattr_args {
    uint64_t value;
    uint32_t size;
    uint32_t flags;
};

static int no_at_syscall(void) { return errno == ENOSYS; }

int mc_fchmodat_nofollow(int dirfd, const char *name, uint32_t mode) {
    long r = syscall(SYS_fchmodat2, dirfd, name, (unsigned)mode, AT_SYMLINK_NOFOLLOW);
    if (r == 0 || !no_at_syscall()) return (int)r;
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return -1;
    if (S_ISLNK(st.st_mode)) return 0;
    return fchmodat(dirfd, name, mode, 0);
}

static int proc_path(char *buf, size_t n, int dirfd, const char *name) {
    int k = snprintf(buf, n, "/proc/self/fd/%d/%s", dirfd, name);
    if (k < 0 || (size_t)k >= n) { errno = ENAMETOOLONG; return -1; }
    return 0;
}

int mc_lsetxattrat(int dirfd, const char *name, const char *xname, const void *value, size_t size) {
    struct mc_xattr_args a = { (uint64_t)(uintptr_t)value, (uint32_t)size, 0 };
    long r = syscall(SYS_setxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, xname, &a, sizeof(a));
    if (r == 0 || !no_at_syscall()) return (int)r;
    char p[4096 + 64];
    if (proc_path(p, sizeof(p), dirfd, name) != 0) return -1;
    return lsetxattr(p, xname, value, size, 0);
}

ssize_t mc_llistxattrat(int dirfd, const char *name, char *list, size_t size) {
    long r = syscall(SYS_listxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, list, size);
    if (r >= 0 || !no_at_syscall()) return (ssize_t)r;
    char p[4096 + 64];
    if (proc_path(p, sizeof(p), dirfd, name) != 0) return -1;
    return llistxattr(p, list, size);
}

ssize_t mc_lgetxattrat(int dirfd, const char *name, const char *xname, void *value, size_t size) {
    struct mc_xattr_args a = { (uint64_t)(uintptr_t)value, (uint32_t)size, 0 };
    long r = syscall(SYS_getxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, xname, &a, sizeof(a));
    if (r >= 0 || !no_at_syscall()) return (ssize_t)r;
    char p[4096 + 64];
    if (proc_path(p, sizeof(p), dirfd, name) != 0) return -1;
    return lgetxattr(p, xname, value, size);
}

uint64_t mc_makedev(uint32_t major, uint32_t minor) { return makedev(major, minor); }

int mc_fsetxattr(int fd, const char *xname, const void *value, size_t size) { return fsetxattr(fd, xname, value, size, 0); }
ssize_t mc_fgetxattr(int fd, const char *xname, void *value, size_t size) { return fgetxattr(fd, xname, value, size); }
ssize_t mc_copy_file_range(int in, int out, size_t len) { return copy_file_range(in, NULL, out, NULL, len, 0); }

// SHA-256 (FIPS 180-4) for content digests: the SHA extensions (SHA-NI)
// where the CPU has them, else portable C. Not libcrypto: its static
// library runs a CPU probe (OPENSSL_cpuid_setup, a dozen cpuid
// instructions, each a VM exit under a hypervisor) from .init at every
// start of the binary, which would put images' hashing on the path of
// every container's start. Here the CPU is asked once, at the first hash.

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

// Portable: the 16-word schedule kept rolling, eight rounds per macro pass.
#define S_BSIG0(x) (ROR32(x, 2) ^ ROR32(x, 13) ^ ROR32(x, 22))
#define S_BSIG1(x) (ROR32(x, 6) ^ ROR32(x, 11) ^ ROR32(x, 25))
#define S_SSIG0(x) (ROR32(x, 7) ^ ROR32(x, 18) ^ ((x) >> 3))
#define S_SSIG1(x) (ROR32(x, 17) ^ ROR32(x, 19) ^ ((x) >> 10))
#define S_CH(x, y, z) ((z) ^ ((x) & ((y) ^ (z))))
#define S_MAJ(x, y, z) (((x) & (y)) | ((z) & ((x) | (y))))
#define S_ROUND(a, b, c, d, e, f, g, h, i, k)                      \
    do {                                                          \
        uint32_t t1 = h + S_BSIG1(e) + S_CH(e, f, g) + (k) + w[i]; \
        d += t1;                                                  \
        h = t1 + S_BSIG0(a) + S_MAJ(a, b, c);                     \
    } while (0)
#define S_SCHED(i) (w[(i) & 15] += S_SSIG1(w[((i) - 2) & 15]) + w[((i) - 7) & 15] + S_SSIG0(w[((i) - 15) & 15]))

static void sha256_blocks_c(uint32_t s[8], const uint8_t *p, size_t blocks) {
    while (blocks--) {
        uint32_t w[16];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
        uint32_t a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
        for (int r = 0; r < 64; r += 8) {
            if (r >= 16) {
                for (int i = 0; i < 8; i++) S_SCHED(r + i);
            }
            int q = r & 15;
            S_ROUND(a, b, c, d, e, f, g, h, q + 0, sha256_k[r + 0]);
            S_ROUND(h, a, b, c, d, e, f, g, q + 1, sha256_k[r + 1]);
            S_ROUND(g, h, a, b, c, d, e, f, q + 2, sha256_k[r + 2]);
            S_ROUND(f, g, h, a, b, c, d, e, q + 3, sha256_k[r + 3]);
            S_ROUND(e, f, g, h, a, b, c, d, q + 4, sha256_k[r + 4]);
            S_ROUND(d, e, f, g, h, a, b, c, q + 5, sha256_k[r + 5]);
            S_ROUND(c, d, e, f, g, h, a, b, q + 6, sha256_k[r + 6]);
            S_ROUND(b, c, d, e, f, g, h, a, q + 7, sha256_k[r + 7]);
        }
        s[0] += a; s[1] += b; s[2] += c; s[3] += d; s[4] += e; s[5] += f; s[6] += g; s[7] += h;
        p += 64;
    }
}

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

// The SHA extensions: two rounds per sha256rnds2 on the state kept as ABEF
// and CDGH; the message schedule by sha256msg1/sha256msg2, four words at a time.
__attribute__((target("sha,sse4.1,ssse3")))
static void sha256_blocks_ni(uint32_t s[8], const uint8_t *p, size_t blocks) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&s[0]);    // DCBA
    __m128i st1 = _mm_loadu_si128((const __m128i *)&s[4]);    // HGFE
    tmp = _mm_shuffle_epi32(tmp, 0xB1);                       // CDAB
    st1 = _mm_shuffle_epi32(st1, 0x1B);                       // EFGH
    __m128i st0 = _mm_alignr_epi8(tmp, st1, 8);               // ABEF
    st1 = _mm_blend_epi16(st1, tmp, 0xF0);                    // CDGH
#define NI_RND4(m, g)                                                                  \
    do {                                                                               \
        __m128i k_ = _mm_add_epi32(m, _mm_loadu_si128((const __m128i *)&sha256_k[4 * (g)])); \
        st1 = _mm_sha256rnds2_epu32(st1, st0, k_);                                     \
        st0 = _mm_sha256rnds2_epu32(st0, st1, _mm_shuffle_epi32(k_, 0x0E));            \
    } while (0)
    // w0 = W(g-4) becomes W(g), from W(g-3), W(g-2), W(g-1).
#define NI_SCHED(w0, w1, w2, w3) \
    w0 = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(w0, w1), _mm_alignr_epi8(w3, w2, 4)), w3)
    while (blocks--) {
        __m128i abef = st0, cdgh = st1;
        __m128i m0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 0)), bswap);
        __m128i m1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16)), bswap);
        __m128i m2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 32)), bswap);
        __m128i m3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 48)), bswap);
        NI_RND4(m0, 0); NI_RND4(m1, 1); NI_RND4(m2, 2); NI_RND4(m3, 3);
        NI_SCHED(m0, m1, m2, m3); NI_RND4(m0, 4);
        NI_SCHED(m1, m2, m3, m0); NI_RND4(m1, 5);
        NI_SCHED(m2, m3, m0, m1); NI_RND4(m2, 6);
        NI_SCHED(m3, m0, m1, m2); NI_RND4(m3, 7);
        NI_SCHED(m0, m1, m2, m3); NI_RND4(m0, 8);
        NI_SCHED(m1, m2, m3, m0); NI_RND4(m1, 9);
        NI_SCHED(m2, m3, m0, m1); NI_RND4(m2, 10);
        NI_SCHED(m3, m0, m1, m2); NI_RND4(m3, 11);
        NI_SCHED(m0, m1, m2, m3); NI_RND4(m0, 12);
        NI_SCHED(m1, m2, m3, m0); NI_RND4(m1, 13);
        NI_SCHED(m2, m3, m0, m1); NI_RND4(m2, 14);
        NI_SCHED(m3, m0, m1, m2); NI_RND4(m3, 15);
        st0 = _mm_add_epi32(st0, abef);
        st1 = _mm_add_epi32(st1, cdgh);
        p += 64;
    }
#undef NI_RND4
#undef NI_SCHED
    tmp = _mm_shuffle_epi32(st0, 0x1B);                       // FEBA
    st1 = _mm_shuffle_epi32(st1, 0xB1);                       // DCHG
    st0 = _mm_blend_epi16(tmp, st1, 0xF0);                    // DCBA
    st1 = _mm_alignr_epi8(st1, tmp, 8);                       // HGFE
    _mm_storeu_si128((__m128i *)&s[0], st0);
    _mm_storeu_si128((__m128i *)&s[4], st1);
}

static int sha256_have_ni(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & (1u << 19)) || !(c & (1u << 9))) return 0;       // SSE4.1, SSSE3
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 29) & 1;                                       // SHA
}
#endif

// 0 unknown, 1 portable, 2 SHA-NI; 3 forces portable (tests).
static int sha256_impl;

static void sha256_blocks(uint32_t s[8], const uint8_t *p, size_t blocks) {
    int impl = __atomic_load_n(&sha256_impl, __ATOMIC_RELAXED);
#if defined(__x86_64__)
    if (impl == 0) {
        impl = sha256_have_ni() ? 2 : 1;
        __atomic_store_n(&sha256_impl, impl, __ATOMIC_RELAXED);
    }
    if (impl == 2) { sha256_blocks_ni(s, p, blocks); return; }
#endif
    (void)impl;
    sha256_blocks_c(s, p, blocks);
}

int mc_sha256_accelerated(int force_portable) {
    if (force_portable) __atomic_store_n(&sha256_impl, force_portable > 0 ? 3 : 0, __ATOMIC_RELAXED);
    uint32_t s[8] = {0};
    uint8_t block[64] = {0};
    sha256_blocks(s, block, 1);
    return __atomic_load_n(&sha256_impl, __ATOMIC_RELAXED) == 2;
}

void mc_sha256_init(mc_sha256_ctx *c) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, iv, sizeof(iv));
    c->len = 0;
    c->n = 0;
}

void mc_sha256_update(mc_sha256_ctx *c, const void *data, size_t n) {
    const uint8_t *p = data;
    c->len += n;
    if (c->n) {
        size_t take = 64 - c->n < n ? 64 - c->n : n;
        memcpy(c->buf + c->n, p, take);
        c->n += (uint32_t)take;
        p += take;
        n -= take;
        if (c->n < 64) return;
        sha256_blocks(c->h, c->buf, 1);
        c->n = 0;
    }
    if (n >= 64) {
        sha256_blocks(c->h, p, n / 64);
        p += n & ~(size_t)63;
        n &= 63;
    }
    if (n) {
        memcpy(c->buf, p, n);
        c->n = (uint32_t)n;
    }
}

void mc_sha256_final(mc_sha256_ctx *c, uint8_t out[32]) {
    uint64_t bits = c->len * 8;
    uint8_t pad[72] = {0x80};
    size_t padn = (c->n < 56 ? 56 : 120) - c->n;
    for (int i = 0; i < 8; i++) pad[padn + i] = (uint8_t)(bits >> (56 - 8 * i));
    uint64_t len = c->len;
    mc_sha256_update(c, pad, padn + 8);
    c->len = len;
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}
