/* The qfab firmware runtime: console output, cycle counter, exit. */
#ifndef QFAB_RT_H
#define QFAB_RT_H

#include <stdint.h>

#include "qfab_soc.h"

void qfab_putc(char c);
void qfab_puts(const char *s);
void qfab_put_dec(int32_t value);
void qfab_put_hex(uint32_t value);
uint64_t qfab_cycles(void);
__attribute__((noreturn)) void qfab_exit(int status);

#endif /* QFAB_RT_H */
