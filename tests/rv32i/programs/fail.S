#include "macros.h"
// Fails on purpose at test 7, so the harness conventions for failure can be checked.
RVTEST_BEGIN
    TEST_RR(2, add, 3, 1, 2)
    TEST_RR(7, add, 4, 1, 2)
RVTEST_END
