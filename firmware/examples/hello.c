/* Prints through the console, multiplies (a compiler_rt call on RV32I) and divides, and
 * reports its cycle count. Exits 0 when the arithmetic checks out. */
#include "qfab_rt.h"

static volatile int32_t operands[] = {12345, -678, 46341, 46341};

int main(void) {
    uint64_t start = qfab_cycles();
    int32_t product = operands[0] * operands[1];
    int32_t square = operands[2] * operands[3];
    int32_t quotient = product / 7;
    qfab_puts("hello from rv32i\n");
    qfab_puts("12345 * -678 = ");
    qfab_put_dec(product);
    qfab_puts("\n46341^2 = 0x");
    qfab_put_hex((uint32_t)square);
    qfab_puts("\nproduct / 7 = ");
    qfab_put_dec(quotient);
    qfab_puts("\ncycles: ");
    qfab_put_dec((int32_t)(qfab_cycles() - start));
    qfab_putc('\n');
    return product == -8369910 && (uint32_t)square == 0x80001219u && quotient == -1195701 ? 0 : 3;
}
