// The simulator main of qfab's co-simulation builds: cocotb reaches the harness through VPI,
// and the clock is driven here, in C++.
//
// A time step runs the regions VPI users expect, in this order: cbNextSimTime and timed
// callbacks (cocotb's Timer), value-change callbacks, evaluation until no VPI write asks for
// another, cbReadWriteSynch, the end of the step, cbReadOnlySynch, then the trace. The clock
// `clk` starts low and toggles every QFAB_HALF_PERIOD time units (the precision of the build's
// timescale), before the timed callbacks of its step.
//
// Free running: while the harness input `free_run` is high, `done` is low and no read-write or
// read-only callback waits, the testbench has said it waits only for `done`, `in_half` or
// `out_half` to change (or for a timer). The clock then runs without calling into VPI at all,
// as fast as a plain C++ loop, until a step changes one of the three (that step finishes with
// every region, so its value-change callbacks fire as usual) or the next timed callback is due.
// Value changes of other signals during such a run reach no callback.
//
// The cocotb test moves the harness's rings through qfab_array_copy (below), exported from
// this binary, rather than through vpi_get_value_array / vpi_put_value_array.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include "Vtop.h"
#include "verilated.h"
#include "verilated_syms.h"
#include "verilated_vpi.h"
#if VM_TRACE
#include "verilated_vcd_c.h"
#endif

#ifndef QFAB_HALF_PERIOD
#define QFAB_HALF_PERIOD 5000
#endif

extern "C" void vlog_startup_routines_bootstrap(void);

namespace {

constexpr uint64_t kNever = ~static_cast<uint64_t>(0);

#if VM_TRACE
VerilatedVcdC* trace = nullptr;
#endif

void dump(VerilatedContext* context) {
#if VM_TRACE
    if (trace) trace->dump(context->time());
#endif
}

// Value-change callbacks may write signals and so cause further changes: run them to a fixpoint.
void settle() {
    while (VerilatedVpi::callValueCbs()) {
    }
}

// The rest of the current time step, from its first evaluation (done already if `evaluated`).
void finish_step(VerilatedContext* context, Vtop* top, bool evaluated) {
    do {
        do {
            if (!evaluated) top->eval_step();
            evaluated = false;
            VerilatedVpi::clearEvalNeeded();
            VerilatedVpi::doInertialPuts();
            settle();
        } while (VerilatedVpi::evalNeeded());
        VerilatedVpi::callCbs(cbReadWriteSynch);
        VerilatedVpi::doInertialPuts();
        settle();
    } while (VerilatedVpi::evalNeeded());
    top->eval_end_step();
    VerilatedVpi::callCbs(cbReadOnlySynch);
    dump(context);
}

class Clock {
  public:
    explicit Clock(Vtop* top) : top_(top) { top_->clk = 0; }
    uint64_t next_edge() const { return next_edge_; }
    void toggle() {
        top_->clk = !top_->clk;
        next_edge_ += QFAB_HALF_PERIOD;
    }

  private:
    Vtop* top_;
    uint64_t next_edge_ = QFAB_HALF_PERIOD;
};

// The earliest time something other than the clock is due: a timed callback or a delay.
uint64_t next_deadline(Vtop* top) {
    const uint64_t timed = VerilatedVpi::cbNextDeadline();
    return top->eventsPending() ? std::min(timed, top->nextTimeSlot()) : timed;
}

bool may_run_free(Vtop* top) {
    return top->free_run && !top->done && !VerilatedVpi::hasCbs(cbReadWriteSynch)
           && !VerilatedVpi::hasCbs(cbReadOnlySynch);
}

// Clock steps before `deadline` with no VPI calls; returns whether it stopped inside a step
// (one evaluated, not finished) because a signal the testbench waits for changed.
bool run_free(VerilatedContext* context, Vtop* top, Clock& clock, uint64_t deadline) {
    const auto done = top->done, in_half = top->in_half, out_half = top->out_half;
    while (clock.next_edge() < deadline) {
        context->time(clock.next_edge());
        clock.toggle();
        top->eval_step();
        if (top->done != done || top->in_half != in_half || top->out_half != out_half) {
            return true;
        }
        top->eval_end_step();
        dump(context);
    }
    return false;
}

void end_of_simulation(void*) {
    VerilatedVpi::callCbs(cbEndOfSimulation);
#if VM_TRACE
    if (trace) trace->close();
#endif
}

}  // namespace

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "qfab_array_copy copies the model's words as bytes, least significant first");

// Elements of the unpacked array `name` in `scope` copied to (`write`) or from `data`: `count`
// elements from `first` on, going round past the last, each ceil(width / 8) bytes, least
// significant first. Those are the bytes vpi_put_value_array and vpi_get_value_array move in
// vpiRawTwoStateVal form, which Verilator copies a byte at a time, a loop an element; here an
// element is one memcpy. Returns 0, or -1 when there is no such array of one unpacked
// dimension from 0 (nothing is copied then).
extern "C" int qfab_array_copy(const char* scope, const char* name, int write, uint32_t first,
                               uint32_t count, uint8_t* data) {
    const VerilatedScope* const scopep = Verilated::threadContextp()->scopeFind(scope);
    const VerilatedVar* const varp = scopep ? scopep->varFind(name) : nullptr;
    if (!varp || varp->udims() != 1 || varp->low(1) != 0) return -1;
    const uint32_t depth = varp->elements(1);
    const size_t stride = varp->entSize();
    const size_t bytes = (varp->entBits() + 7) / 8;
    if (!stride || bytes > stride || first >= depth) return -1;
    uint8_t* const base = static_cast<uint8_t*>(varp->datap());
    uint32_t index = first;
    for (uint32_t i = 0; i < count; ++i) {
        uint8_t* const element = base + size_t{index} * stride;
        if (write) {
            std::memcpy(element, data + size_t{i} * bytes, bytes);
        } else {
            std::memcpy(data + size_t{i} * bytes, element, bytes);
        }
        index = index + 1 == depth ? 0 : index + 1;
    }
    return 0;
}

int main(int argc, char** argv) {
    // The default context: cocotb's VPI library reaches the model through it.
    VerilatedContext* const context = Verilated::threadContextp();
    context->commandArgs(argc, argv);
    bool trace_on = false;
    for (int i = 1; i < argc; ++i) trace_on |= std::strcmp(argv[i], "--trace") == 0;
#if VM_TRACE
    if (trace_on) context->traceEverOn(true);
#endif
    const auto top = std::make_unique<Vtop>("");
    Verilated::fatalOnVpiError(false);  // cocotb probes for system tasks through VPI
#if VM_TRACE
    if (trace_on) {
        trace = new VerilatedVcdC;
        top->trace(trace, 99);
        trace->open("dump.vcd");
    }
#endif
    vlog_startup_routines_bootstrap();
    Verilated::addExitCb(end_of_simulation, nullptr);
    VerilatedVpi::callCbs(cbStartOfSimulation);
    settle();

    Clock clock(top.get());
    finish_step(context, top.get(), false);
    while (!context->gotFinish()) {
        const uint64_t deadline = next_deadline(top.get());
        if (may_run_free(top.get()) && run_free(context, top.get(), clock, deadline)) {
            finish_step(context, top.get(), true);
            continue;
        }
        const uint64_t next = std::min(clock.next_edge(), deadline);
        if (next == kNever) break;  // no clock edge is ever that far
        context->time(next);
        VerilatedVpi::callCbs(cbNextSimTime);
        settle();
        if (next == clock.next_edge()) clock.toggle();
        VerilatedVpi::callTimedCbs();
        settle();
        finish_step(context, top.get(), false);
    }
    top->final();
    end_of_simulation(nullptr);
#if VM_TRACE
    delete trace;
    trace = nullptr;
#endif
    return context->errorCount() > 0 ? 1 : 0;
}
