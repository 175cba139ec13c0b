/* broken.c: the negative control "cring-broken-sync": cring.c with a synchronize that returns
 * at once without waiting (RingNegativeControl.synchronizeDoesNotWait), so that the detectors
 * can be shown to catch a T3 violation. Everything else is identical. */
#define CRING_BROKEN_SYNCHRONIZE 1
#include "../CRingEngine/cring.c"
