// Free-running Verilator harness for the qfab SoC (built once, shared by every program).
//
// Usage: harness LOAD_FILE RESULT_FILE BOOT_ADDR TOHOST_ADDR|0 MAX_CYCLES M_ENABLE
//                [DUMP_ADDR DUMP_WORDS DUMP_FILE]...
// LOAD_FILE holds lines "ADDR WORD" in hex, written through the debug bus port while the
// core is held in reset. Console characters go to stdout. RESULT_FILE receives one line:
// "<exit|tohost|timeout> <code> <cycles>". Each dump writes DUMP_WORDS words, one hex word a line.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "Vqfab_soc.h"
#include "verilated.h"

// Verilator escapes the "__" that Amaranth puts between an interface and its members.
#define DBG(member) dbg___05F##member

static Vqfab_soc *top;

static void tick() {
    top->clk = 0;
    top->eval();
    top->clk = 1;
    top->eval();
}

// One debug-port transfer; returns the read data and sets *err on a bus error.
static uint32_t transfer(uint32_t addr, bool we, uint32_t wdata, bool *err) {
    top->DBG(valid) = 1;
    top->DBG(addr) = addr;
    top->DBG(we) = we;
    top->DBG(sel) = 0xf;
    top->DBG(wdata) = wdata;
    top->eval();
    while (!top->DBG(ready)) tick();
    uint32_t rdata = top->DBG(rdata);
    *err = top->DBG(err);
    tick();
    top->DBG(valid) = 0;
    top->eval();
    return rdata;
}

int main(int argc, char **argv) {
    if (argc < 7 || (argc - 7) % 3) {
        fprintf(stderr, "usage: %s LOAD RESULT BOOT TOHOST MAX_CYCLES M [ADDR WORDS FILE]...\n",
                argv[0]);
        return 2;
    }
    auto ctx = std::make_unique<VerilatedContext>();
    top = new Vqfab_soc{ctx.get()};
    uint32_t boot = strtoul(argv[3], nullptr, 16);
    uint32_t tohost = strtoul(argv[4], nullptr, 16);
    unsigned long long max_cycles = strtoull(argv[5], nullptr, 10);

    top->rst = 1;
    top->run = 0;
    top->DBG(valid) = 0;
    top->boot_addr = boot;
#ifdef QFAB_M_ENABLE  // the run-elf SoC switches the M extension per program
    top->m_enable = argv[6][0] == '1';
#endif
    tick();
    tick();
    top->rst = 0;
    tick();

    FILE *load = fopen(argv[1], "r");
    if (!load) { perror(argv[1]); return 2; }
    unsigned addr, word;
    while (fscanf(load, "%x %x", &addr, &word) == 2) {
        bool err;
        transfer(addr, true, word, &err);
        if (err) {
            fprintf(stderr, "load: address 0x%08x is not writable memory\n", addr);
            return 3;
        }
    }
    fclose(load);

    top->run = 1;
    top->eval();
    const char *reason = "timeout";
    uint32_t code = 0;
    unsigned long long cycles = 0;
    bool stopped = false;
    while (cycles < max_cycles) {
        tick();
        ++cycles;
        if (top->console_valid) putchar(top->console_data);
        if (top->exit_valid) {
            reason = "exit";
            code = top->exit_code;
            stopped = true;
            break;
        }
        if (tohost && top->store_valid && top->store_addr == tohost && top->store_data) {
            reason = "tohost";
            code = top->store_data;
            stopped = true;
            break;
        }
    }
    // Count the cycle in which the ending store completes.
    if (stopped) ++cycles;
    fflush(stdout);

    // Hold the core in reset and let any transfer it had started finish before reading.
    top->run = 0;
    tick();
    tick();
    for (int i = 7; i + 2 < argc; i += 3) {
        uint32_t base = strtoul(argv[i], nullptr, 16);
        unsigned long words = strtoul(argv[i + 1], nullptr, 10);
        FILE *out = fopen(argv[i + 2], "w");
        if (!out) { perror(argv[i + 2]); return 2; }
        for (unsigned long w = 0; w < words; ++w) {
            bool err;
            fprintf(out, "%08x\n", transfer(base + 4 * w, false, 0, &err));
        }
        fclose(out);
    }
    FILE *res = fopen(argv[2], "w");
    if (!res) { perror(argv[2]); return 2; }
    fprintf(res, "%s %u %llu\n", reason, code, cycles);
    fclose(res);
    top->final();
    delete top;
    return 0;
}
