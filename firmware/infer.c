/* Inference on the qfab SoC.
 *
 * The host (`qfab sim --soc`, or a board's loader) leaves a job in RAM at QFAB_JOB_ADDR: a
 * batch of input beats and where the output beats, each image's argmax and the report go.
 * The accelerator's streamer moves the tensors while the core waits; the core then runs
 * what the fabric lacks: argmax, and the model's tail if it has one (softmax, say: the
 * kernels of qfab_tail.h, chained by qfab_tail() in qfab_model.h), and reports cycles.
 * qfab_model.h, written by `qfab compile`, holds the model's tables: beats, words, element
 * format, stage names, the tail's tables.
 */
#include "qfab_model.h"
#include "qfab_rt.h"

struct job {
    uint32_t magic, n_images, in_addr, out_addr, argmax_addr, report_addr, tail_addr;
};

/* Report words, in this order, then one word per stage. */
enum { REPORT_STATUS, REPORT_TOTAL, REPORT_ACCEL, REPORT_LATENCY, REPORT_ARGMAX,
       REPORT_TAIL, REPORT_STAGES, REPORT_STAGE0 };

extern char __bss_end[];

/* Element j of an output beat: QFAB_OUT_BITS bits from bit j * QFAB_OUT_BITS. */
static int32_t element(const volatile uint32_t *beat, uint32_t j) {
    uint32_t pos = j * QFAB_OUT_BITS, word = pos >> 5, off = pos & 31;
    uint32_t v = beat[word] >> off;
    if (off + QFAB_OUT_BITS > 32) v |= beat[word + 1] << (32 - off);
#if QFAB_OUT_BITS < 32
    v &= (1u << QFAB_OUT_BITS) - 1;
#if QFAB_OUT_SIGNED
    if (v >> (QFAB_OUT_BITS - 1)) v |= ~((1u << QFAB_OUT_BITS) - 1);
#endif
#endif
    return (int32_t)v;
}

/* The model's flat output index of the largest code; the lowest index wins a tie. */
static uint32_t argmax(const volatile uint32_t *out) {
    int32_t best = 0;
    uint32_t best_index = 0, pos = 0;
    for (uint32_t b = 0; b < QFAB_OUT_BEATS; ++b, out += QFAB_OUT_WORDS) {
        for (uint32_t j = 0; j < QFAB_OUT_ELEMS; ++j, ++pos) {
            int32_t v = element(out, j);
            uint32_t index = QFAB_OUT_INDEX(pos);
            if (pos == 0 || v > best || (v == best && index < best_index)) {
                best = v;
                best_index = index;
            }
        }
    }
    return best_index;
}

#ifdef QFAB_TAIL_ELEMS
/* The accelerator's output codes of one image in the model's flat order: the tail's input. */
static int32_t tail_in[QFAB_OUT_BEATS * QFAB_OUT_ELEMS];

static void run_tail(const volatile uint32_t *out, int32_t *result) {
    uint32_t pos = 0;
    for (uint32_t b = 0; b < QFAB_OUT_BEATS; ++b, out += QFAB_OUT_WORDS)
        for (uint32_t j = 0; j < QFAB_OUT_ELEMS; ++j, ++pos)
            tail_in[QFAB_OUT_INDEX(pos)] = element(out, j);
    qfab_tail(tail_in, result);
}
#endif

static void put_line(const char *label, uint32_t value) {
    qfab_puts(label);
    qfab_put_dec((int32_t)value);
    qfab_putc('\n');
}

int main(void) {
    const volatile struct job *job = (const volatile struct job *)QFAB_JOB_ADDR;
    if ((uint32_t)__bss_end > QFAB_JOB_ADDR) {
        qfab_puts("firmware data overlaps the job area\n");
        return 4;
    }
    if (job->magic != QFAB_JOB_MAGIC) {
        qfab_puts("no job in RAM\n");
        return 2;
    }
    if (QFAB_ACCEL_INFO != QFAB_ACCEL_INFO_EXPECTED) {
        qfab_puts("the accelerator does not match this firmware's tables\n");
        return 3;
    }
    uint32_t n = job->n_images;
    volatile uint32_t *report = (volatile uint32_t *)job->report_addr;
    uint64_t t0 = qfab_cycles();
    QFAB_ACCEL_IN_ADDR = job->in_addr;
    QFAB_ACCEL_IN_BEATS = n * QFAB_IN_BEATS;
    QFAB_ACCEL_OUT_ADDR = job->out_addr;
    QFAB_ACCEL_OUT_BEATS = n * QFAB_OUT_BEATS;
    QFAB_ACCEL_CTRL = 1;
    uint32_t status;
    while (!((status = QFAB_ACCEL_STATUS) & 2)) {
    }
    uint64_t t1 = qfab_cycles();
    if (status & 4) {
        report[REPORT_STATUS] = QFAB_ACCEL_ERROR;
        put_line("accelerator job refused, error bits ", QFAB_ACCEL_ERROR);
        return 1;
    }
    const volatile uint32_t *out = (const volatile uint32_t *)job->out_addr;
    volatile uint32_t *classes = (volatile uint32_t *)job->argmax_addr;
    uint64_t tail_cycles = 0;
    for (uint32_t i = 0; i < n; ++i, out += QFAB_OUT_BEATS * QFAB_OUT_WORDS) {
        classes[i] = argmax(out);
#ifdef QFAB_TAIL_ELEMS
        uint64_t start = qfab_cycles();
        run_tail(out, (int32_t *)job->tail_addr + i * QFAB_TAIL_ELEMS);
        tail_cycles += qfab_cycles() - start;
#endif
    }
    uint64_t t2 = qfab_cycles();

    report[REPORT_STATUS] = 0;
    report[REPORT_TOTAL] = (uint32_t)(t2 - t0);
    report[REPORT_ACCEL] = QFAB_ACCEL_CYCLES;
    report[REPORT_LATENCY] = QFAB_ACCEL_LATENCY;
    report[REPORT_ARGMAX] = (uint32_t)(t2 - t1 - tail_cycles);
    report[REPORT_TAIL] = (uint32_t)tail_cycles;
    report[REPORT_STAGES] = QFAB_STAGES;
    for (uint32_t s = 0; s < QFAB_STAGES; ++s) report[REPORT_STAGE0 + s] = QFAB_ACCEL_STAGE_CYCLES(s);

    qfab_puts("qfab firmware: " QFAB_MODEL_NAME "\n");
    put_line("inferences: ", n);
    put_line("accelerator cycles: ", QFAB_ACCEL_CYCLES);
    put_line("argmax cycles: ", (uint32_t)(t2 - t1 - tail_cycles));
#ifdef QFAB_TAIL_ELEMS
    put_line("tail cycles: ", (uint32_t)tail_cycles);
#endif
    put_line("firmware cycles: ", (uint32_t)(t2 - t0));
    qfab_puts("classes:");
    for (uint32_t i = 0; i < n && i < 16; ++i) {
        qfab_putc(' ');
        qfab_put_dec((int32_t)classes[i]);
    }
    qfab_puts(n > 16 ? " ...\n" : "\n");
    return 0;
}
