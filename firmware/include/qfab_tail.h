/* The ops the accelerator lacks, run on the control core after it (the firmware tail).
 *
 * Each kernel is the integer definition the reference runs (sim/reference.py, and the
 * lowering in compiler/backend/tail.py), so the SoC co-simulation checks it bit for bit.
 * Tensors are int32 codes in the model's flat (row-major) order; rows are the last axis.
 */
#ifndef QFAB_TAIL_H
#define QFAB_TAIL_H

#include <stdint.h>

/* Softmax over each row of `cols` codes: d = max - x = (j << shift) + k,
 * e = (coarse[j] * fine[k] + 2**14) >> 15 (0 past the coarse table), then
 * y = zero_point + floor(e * num / sum(e) + 1/2), clamped to [lo, hi]; e * num < 2**32. */
static void qfab_softmax(const int32_t *x, int32_t *y, uint32_t rows, uint32_t cols,
                         const uint16_t *coarse, uint32_t coarse_len, const uint16_t *fine,
                         uint32_t shift, uint32_t num, int32_t zero_point, int32_t lo,
                         int32_t hi) {
    uint32_t mask = (1u << shift) - 1;
    for (uint32_t r = 0; r < rows; ++r, x += cols, y += cols) {
        int32_t top = x[0];
        for (uint32_t c = 1; c < cols; ++c)
            if (x[c] > top) top = x[c];
        uint32_t total = 0;
        for (uint32_t c = 0; c < cols; ++c) {
            uint32_t d = (uint32_t)(top - x[c]), j = d >> shift;
            uint32_t e = j < coarse_len ? ((uint32_t)coarse[j] * fine[d & mask] + (1u << 14)) >> 15
                                        : 0;
            y[c] = (int32_t)e;
            total += e;
        }
        for (uint32_t c = 0; c < cols; ++c) {
            uint32_t p = (uint32_t)y[c] * num;
            uint32_t q = p / total, rem = p - q * total;
            if (2 * rem >= total) ++q;
            int32_t v = (int32_t)q + zero_point;
            y[c] = v < lo ? lo : v > hi ? hi : v;
        }
    }
}

/* y = table[x - in_min]: one output code per input code (Sigmoid, Tanh). */
static void qfab_lookup(const int32_t *x, int32_t *y, uint32_t n, const int32_t *table,
                        int32_t in_min) {
    for (uint32_t i = 0; i < n; ++i) y[i] = table[x[i] - in_min];
}

#endif /* QFAB_TAIL_H */
