/* The qfab firmware runtime: console output, cycle counter, exit. */
#include "qfab_rt.h"

void qfab_putc(char c) { QFAB_SYSCTL_CONSOLE = (uint8_t)c; }

void qfab_puts(const char *s) {
    while (*s) qfab_putc(*s++);
}

void qfab_put_dec(int32_t value) {
    char buf[11];
    int n = 0;
    /* Work in unsigned so that INT32_MIN prints correctly. */
    uint32_t v = value < 0 ? 0u - (uint32_t)value : (uint32_t)value;
    if (value < 0) qfab_putc('-');
    do {
        buf[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) qfab_putc(buf[--n]);
}

void qfab_put_hex(uint32_t value) {
    for (int shift = 28; shift >= 0; shift -= 4) qfab_putc("0123456789abcdef"[value >> shift & 15]);
}

uint64_t qfab_cycles(void) {
    uint32_t hi, lo;
    do { /* the high word must not change while the low word is read */
        hi = QFAB_SYSCTL_CYCLE_HI;
        lo = QFAB_SYSCTL_CYCLE_LO;
    } while (hi != QFAB_SYSCTL_CYCLE_HI);
    return (uint64_t)hi << 32 | lo;
}

void qfab_exit(int status) {
    QFAB_SYSCTL_EXIT = (uint32_t)status;
    for (;;) {
    }
}
