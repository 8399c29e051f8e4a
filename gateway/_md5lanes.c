/* MD5 of up to 16 independent messages at once, one per 32-bit lane of an AVX-512 register.

   MD5 is a chain of dependent 32-bit steps: one message cannot go faster than ~4.7 cycles per
   byte (OpenSSL's assembly, 0.84 GB/s here). Sixteen messages side by side run the same steps
   on sixteen lanes for about the price of one (the technique of Intel's ISA-L md5_mb and
   MinIO's md5-simd), so a gateway receiving several uploads at once pays a fraction of the MD5
   per byte. gateway/md5.py batches the uploads' blocks into lanes.

   md5_lanes(states, blocks): advance each lane's state (16 bytes: A, B, C, D little-endian,
   which is also the digest once the padding is hashed) over its block, a buffer whose length
   is a multiple of 64. Blocks may differ in length; a lane whose block has ended keeps its
   state. The GIL is released while hashing. Only the AVX-512 function is compiled for that
   instruction set; available() tells whether this CPU has it (without, and for one or two
   lanes, each lane is hashed on its own by portable C). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define LANES 16

static uint32_t K[64];
static int avx512; /* this CPU has AVX-512F and VL (set at import) */

#define TARGET __attribute__((target("avx512f,avx512vl")))

/* The four round functions as one ternary-logic instruction each (truth table of b, c, d). */
#define F_IMM 0xCA /* (b & c) | (~b & d) */
#define G_IMM 0xE4 /* (b & d) | (c & ~d) */
#define H_IMM 0x96 /* b ^ c ^ d */
#define I_IMM 0x39 /* c ^ (b | ~d) */

/* One MD5 step on every lane. */
#define STEP(IMM, a, b, c, d, g, s, i)                                                       \
    a = _mm512_add_epi32(a, _mm512_add_epi32(m[g], _mm512_set1_epi32((int)K[i])));           \
    a = _mm512_add_epi32(a, _mm512_ternarylogic_epi32(b, c, d, IMM));                        \
    a = _mm512_add_epi32(b, _mm512_rol_epi32(a, s));

#define ROUND4(IMM, i, g0, g1, g2, g3, s0, s1, s2, s3)                                      \
    STEP(IMM, a, b, c, d, g0, s0, i)                                                         \
    STEP(IMM, d, a, b, c, g1, s1, i + 1)                                                     \
    STEP(IMM, c, d, a, b, g2, s2, i + 2)                                                     \
    STEP(IMM, b, c, d, a, g3, s3, i + 3)

#define ROUNDS                                                                            \
    ROUND4(F_IMM, 0, 0, 1, 2, 3, 7, 12, 17, 22)                                           \
    ROUND4(F_IMM, 4, 4, 5, 6, 7, 7, 12, 17, 22)                                           \
    ROUND4(F_IMM, 8, 8, 9, 10, 11, 7, 12, 17, 22)                                         \
    ROUND4(F_IMM, 12, 12, 13, 14, 15, 7, 12, 17, 22)                                      \
    ROUND4(G_IMM, 16, 1, 6, 11, 0, 5, 9, 14, 20)                                          \
    ROUND4(G_IMM, 20, 5, 10, 15, 4, 5, 9, 14, 20)                                         \
    ROUND4(G_IMM, 24, 9, 14, 3, 8, 5, 9, 14, 20)                                          \
    ROUND4(G_IMM, 28, 13, 2, 7, 12, 5, 9, 14, 20)                                         \
    ROUND4(H_IMM, 32, 5, 8, 11, 14, 4, 11, 16, 23)                                        \
    ROUND4(H_IMM, 36, 1, 4, 7, 10, 4, 11, 16, 23)                                         \
    ROUND4(H_IMM, 40, 13, 0, 3, 6, 4, 11, 16, 23)                                         \
    ROUND4(H_IMM, 44, 9, 12, 15, 2, 4, 11, 16, 23)                                        \
    ROUND4(I_IMM, 48, 0, 7, 14, 5, 6, 10, 15, 21)                                         \
    ROUND4(I_IMM, 52, 12, 3, 10, 1, 6, 10, 15, 21)                                        \
    ROUND4(I_IMM, 56, 8, 15, 6, 13, 6, 10, 15, 21)                                        \
    ROUND4(I_IMM, 60, 4, 11, 2, 9, 6, 10, 15, 21)

/* The lanes' states and block counts as vectors (lanes past n: zero, no blocks). */
struct lanes {
    uint32_t a[LANES], b[LANES], c[LANES], d[LANES], count[LANES];
    const uint8_t *data[LANES];
    uint32_t most;
};

static void
load_lanes(struct lanes *v, uint32_t *state[], const uint8_t *data[], const uint32_t blocks[],
           int n)
{
    memset(v, 0, sizeof *v);
    for (int l = 0; l < n; l++) {
        v->a[l] = state[l][0];
        v->b[l] = state[l][1];
        v->c[l] = state[l][2];
        v->d[l] = state[l][3];
        v->count[l] = blocks[l];
        v->data[l] = data[l];
        if (blocks[l] > v->most)
            v->most = blocks[l];
    }
}

static void
store_lanes(const struct lanes *v, uint32_t *state[], int n)
{
    for (int l = 0; l < n; l++) {
        state[l][0] = v->a[l];
        state[l][1] = v->b[l];
        state[l][2] = v->c[l];
        state[l][3] = v->d[l];
    }
}

static const uint8_t zeros[64] __attribute__((aligned(64)));

/* Word w of 8 lanes' current blocks into m[w], w = 0..15: each block is one 64-byte load
   (a lane not in ``active`` reads zeros: a masked-out load of an unmapped address costs a
   microcode assist on AMD), then an 8 x 16 transpose of 32-bit words (unpack 32, unpack 64,
   permute 128-bit pairs). Cheaper than a gather per word. */
TARGET static inline void
load_8(const uint8_t *const p[8], __mmask8 active, __m256i m[16])
{
    __m512i r[8], t[8], u[8];
    for (int l = 0; l < 8; l++)
        r[l] = _mm512_loadu_si512((active >> l) & 1 ? (const void *)p[l] : (const void *)zeros);
    for (int l = 0; l < 8; l += 2) { /* t: (l, l+1) interleaved by word */
        t[l] = _mm512_unpacklo_epi32(r[l], r[l + 1]);
        t[l + 1] = _mm512_unpackhi_epi32(r[l], r[l + 1]);
    }
    for (int h = 0; h < 8; h += 4) { /* u[h + j], 128-bit chunk c: word 4c + j of 4 lanes */
        u[h + 0] = _mm512_unpacklo_epi64(t[h], t[h + 2]);
        u[h + 1] = _mm512_unpackhi_epi64(t[h], t[h + 2]);
        u[h + 2] = _mm512_unpacklo_epi64(t[h + 1], t[h + 3]);
        u[h + 3] = _mm512_unpackhi_epi64(t[h + 1], t[h + 3]);
    }
    const __m512i chunks01 = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
    const __m512i chunks23 = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);
    for (int j = 0; j < 4; j++) { /* lanes 0-3 of word 4c + j next to lanes 4-7 */
        __m512i x = _mm512_permutex2var_epi64(u[j], chunks01, u[4 + j]);
        __m512i y = _mm512_permutex2var_epi64(u[j], chunks23, u[4 + j]);
        m[j] = _mm512_castsi512_si256(x);
        m[4 + j] = _mm512_extracti64x4_epi64(x, 1);
        m[8 + j] = _mm512_castsi512_si256(y);
        m[12 + j] = _mm512_extracti64x4_epi64(y, 1);
    }
}

/* Up to 16 lanes in 512-bit vectors, two 8-lane loads per block. The steps are latency-bound:
   8 lanes in 256-bit vectors cost as much, on AMD Zen 4 too. */
TARGET static void
hash_16(struct lanes *v)
{
    __m512i va = _mm512_loadu_si512(v->a), vb = _mm512_loadu_si512(v->b);
    __m512i vc = _mm512_loadu_si512(v->c), vd = _mm512_loadu_si512(v->d);
    __m512i vcount = _mm512_loadu_si512(v->count);
    const uint8_t *p[LANES];
    for (int l = 0; l < LANES; l++)
        p[l] = v->data[l];
    __m256i lo[16], hi[16];
    __m512i m[16];
    for (uint32_t block = 0; block < v->most; block++) {
        __mmask16 active = _mm512_cmpgt_epu32_mask(vcount, _mm512_set1_epi32((int)block));
        load_8(p, (__mmask8)(active & 0xFF), lo);
        load_8(p + 8, (__mmask8)(active >> 8), hi);
        for (int w = 0; w < 16; w++)
            m[w] = _mm512_inserti64x4(_mm512_castsi256_si512(lo[w]), hi[w], 1);
        __m512i a = va, b = vb, c = vc, d = vd;
        ROUNDS
        va = _mm512_mask_add_epi32(va, active, va, a);
        vb = _mm512_mask_add_epi32(vb, active, vb, b);
        vc = _mm512_mask_add_epi32(vc, active, vc, c);
        vd = _mm512_mask_add_epi32(vd, active, vd, d);
        for (int l = 0; l < LANES; l++)
            p[l] += 64;
    }
    _mm512_storeu_si512(v->a, va);
    _mm512_storeu_si512(v->b, vb);
    _mm512_storeu_si512(v->c, vc);
    _mm512_storeu_si512(v->d, vd);
}

static void
hash_lanes(uint32_t *state[], const uint8_t *data[], const uint32_t blocks[], int n)
{
    struct lanes v;
    load_lanes(&v, state, data, blocks, n);
    hash_16(&v);
    store_lanes(&v, state, n);
}

/* One lane at a time, for batches too small for the vector code to pay: a vector call costs
   what hashing about two lanes one at a time does. */
#define SCALAR_MAX 2
#define SF(b, c, d) (((b) & (c)) | (~(b) & (d)))
#define SG(b, c, d) (((b) & (d)) | ((c) & ~(d)))
#define SH(b, c, d) ((b) ^ (c) ^ (d))
#define SI(b, c, d) ((c) ^ ((b) | ~(d)))
#define ROTL(x, s) (((x) << (s)) | ((x) >> (32 - (s))))
#define SSTEP(FN, a, b, c, d, g, s, i) a = b + ROTL(a + FN(b, c, d) + K[i] + w[g], s);
#define SROUND4(FN, i, g0, g1, g2, g3, s0, s1, s2, s3)                                      \
    SSTEP(FN, a, b, c, d, g0, s0, i)                                                         \
    SSTEP(FN, d, a, b, c, g1, s1, i + 1)                                                     \
    SSTEP(FN, c, d, a, b, g2, s2, i + 2)                                                     \
    SSTEP(FN, b, c, d, a, g3, s3, i + 3)

static void
hash_one(uint32_t *state, const uint8_t *data, uint32_t blocks)
{
    uint32_t w[16];
    for (uint32_t block = 0; block < blocks; block++, data += 64) {
        memcpy(w, data, 64); /* little-endian words: x86 */
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        SROUND4(SF, 0, 0, 1, 2, 3, 7, 12, 17, 22)
        SROUND4(SF, 4, 4, 5, 6, 7, 7, 12, 17, 22)
        SROUND4(SF, 8, 8, 9, 10, 11, 7, 12, 17, 22)
        SROUND4(SF, 12, 12, 13, 14, 15, 7, 12, 17, 22)
        SROUND4(SG, 16, 1, 6, 11, 0, 5, 9, 14, 20)
        SROUND4(SG, 20, 5, 10, 15, 4, 5, 9, 14, 20)
        SROUND4(SG, 24, 9, 14, 3, 8, 5, 9, 14, 20)
        SROUND4(SG, 28, 13, 2, 7, 12, 5, 9, 14, 20)
        SROUND4(SH, 32, 5, 8, 11, 14, 4, 11, 16, 23)
        SROUND4(SH, 36, 1, 4, 7, 10, 4, 11, 16, 23)
        SROUND4(SH, 40, 13, 0, 3, 6, 4, 11, 16, 23)
        SROUND4(SH, 44, 9, 12, 15, 2, 4, 11, 16, 23)
        SROUND4(SI, 48, 0, 7, 14, 5, 6, 10, 15, 21)
        SROUND4(SI, 52, 12, 3, 10, 1, 6, 10, 15, 21)
        SROUND4(SI, 56, 8, 15, 6, 13, 6, 10, 15, 21)
        SROUND4(SI, 60, 4, 11, 2, 9, 6, 10, 15, 21)
        state[0] += a;
        state[1] += b;
        state[2] += c;
        state[3] += d;
    }
}

static int
cpu_has_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
}

static PyObject *
md5_lanes(PyObject *self, PyObject *args)
{
    PyObject *states_arg, *blocks_arg;
    if (!PyArg_ParseTuple(args, "OO:md5_lanes", &states_arg, &blocks_arg))
        return NULL;
    PyObject *states = PySequence_Fast(states_arg, "states must be a sequence");
    if (states == NULL)
        return NULL;
    PyObject *blocks = PySequence_Fast(blocks_arg, "blocks must be a sequence");
    if (blocks == NULL) {
        Py_DECREF(states);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(states);
    Py_buffer views[2 * LANES];
    int held = 0;
    PyObject *result = NULL;
    if (n != PySequence_Fast_GET_SIZE(blocks) || n < 1 || n > LANES) {
        PyErr_Format(PyExc_ValueError, "1 to %d lanes, as many states as blocks", LANES);
        goto done;
    }
    uint32_t *state_ptr[LANES];
    const uint8_t *data_ptr[LANES];
    uint32_t block_count[LANES];
    for (Py_ssize_t l = 0; l < n; l++) {
        Py_buffer *st = &views[held];
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(states, l), st, PyBUF_WRITABLE) < 0)
            goto done;
        held++;
        if (st->len != 16) {
            PyErr_SetString(PyExc_ValueError, "a state is 16 bytes");
            goto done;
        }
        Py_buffer *bl = &views[held];
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(blocks, l), bl, PyBUF_SIMPLE) < 0)
            goto done;
        held++;
        if (bl->len % 64 != 0 || bl->len / 64 > UINT32_MAX) {
            PyErr_SetString(PyExc_ValueError, "a block's length is a multiple of 64 bytes");
            goto done;
        }
        state_ptr[l] = (uint32_t *)st->buf;
        data_ptr[l] = (const uint8_t *)bl->buf;
        block_count[l] = (uint32_t)(bl->len / 64);
    }
    Py_BEGIN_ALLOW_THREADS
    if (n <= SCALAR_MAX || !avx512)
        for (Py_ssize_t l = 0; l < n; l++)
            hash_one(state_ptr[l], data_ptr[l], block_count[l]);
    else
        hash_lanes(state_ptr, data_ptr, block_count, (int)n);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    for (int i = 0; i < held; i++)
        PyBuffer_Release(&views[i]);
    Py_DECREF(states);
    Py_DECREF(blocks);
    return result;
}

static PyObject *
available(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(avx512);
}

static PyMethodDef methods[] = {
    {"md5_lanes", md5_lanes, METH_VARARGS,
     "md5_lanes(states, blocks): advance up to 16 MD5 states (16-byte writable buffers) over "
     "their blocks (lengths multiples of 64), side by side; the GIL is released."},
    {"available", available, METH_NOARGS, "Whether this CPU has AVX-512F and VL (else every lane is hashed on its own)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_md5lanes", "MD5 of up to 16 messages at once (AVX-512).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__md5lanes(void)
{
    for (int i = 0; i < 64; i++)
        K[i] = (uint32_t)(fabs(sin((double)(i + 1))) * 4294967296.0);
    avx512 = cpu_has_avx512();
    PyObject *mod = PyModule_Create(&module);
    if (mod != NULL && PyModule_AddIntConstant(mod, "LANES", LANES) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
