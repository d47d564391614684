/* test_hostq.c - slots per host (src/io/hostq.c): the limit per key, waiters
 * served first come first, a cancelled waiter never served, a slot passed
 * on rather than lost, hosts forgotten once idle. */
#include <malloc.h>
#include <stdio.h>

#include "io/hostq.h"
#include "base/base.h"
#include "runner.h"

TEST(limit_per_key_and_first_come_first_served) {
  bh__hostq *q = bh__hostq_new(2);
  bh__hostq_wait w[6] = {{0}};
  int i;

  ASSERT(q != NULL);
  for (i = 0; i < 2; i++)
    ASSERT_INT_EQ(bh__hostq_enter(q, "http://a:80", &w[i]), 1);
  for (i = 2; i < 5; i++)
    ASSERT_INT_EQ(bh__hostq_enter(q, "http://a:80", &w[i]), 0);
  /* Another host has its own slots. */
  ASSERT_INT_EQ(bh__hostq_enter(q, "http://b:80", &w[5]), 1);
  ASSERT_INT_EQ(bh__hostq_waiting(q), 3);
  /* w[3] gives up waiting: w[2] then w[4] get the slots, in that order. */
  bh__hostq_cancel(q, &w[3]);
  ASSERT(w[3].host == NULL && !w[3].holding);
  ASSERT(bh__hostq_leave(q, &w[1]) == &w[2]);
  ASSERT(w[2].holding);
  ASSERT(bh__hostq_leave(q, &w[0]) == &w[4]);
  ASSERT(w[4].holding);
  ASSERT_INT_EQ(bh__hostq_waiting(q), 0);
  ASSERT(bh__hostq_leave(q, &w[2]) == NULL);
  ASSERT(bh__hostq_leave(q, &w[4]) == NULL);
  ASSERT(bh__hostq_leave(q, &w[5]) == NULL);
  bh__hostq_free(q);
  return 0;
}

/* After every holder left, the key's slots are all free again: nothing
 * was lost to cancelled waiters or passed-on slots. */
TEST(slots_come_back_whole) {
  bh__hostq *q = bh__hostq_new(3);
  bh__hostq_wait w[10] = {{0}}, *next;
  int i, held = 0;

  ASSERT(q != NULL);
  for (i = 0; i < 10; i++)
    held += bh__hostq_enter(q, "k", &w[i]);
  ASSERT_INT_EQ(held, 3);
  bh__hostq_cancel(q, &w[9]);
  bh__hostq_cancel(q, &w[4]);
  for (i = 0; i < 10; i++) { /* leave as holders, in any order */
    if (!w[i].holding)
      continue;
    next = bh__hostq_leave(q, &w[i]);
    ASSERT(next == NULL || next->holding);
  }
  /* Waiters promoted meanwhile hold slots now: let them go too. */
  for (i = 0; i < 10; i++)
    while (w[i].holding)
      bh__hostq_leave(q, &w[i]);
  ASSERT_INT_EQ(bh__hostq_waiting(q), 0);
  for (i = 0; i < 3; i++)
    ASSERT_INT_EQ(bh__hostq_enter(q, "k", &w[i]), 1);
  ASSERT_INT_EQ(bh__hostq_enter(q, "k", &w[3]), 0);
  bh__hostq_cancel(q, &w[3]);
  for (i = 0; i < 3; i++)
    ASSERT(bh__hostq_leave(q, &w[i]) == NULL);
  bh__hostq_free(q);
  return 0;
}

/* 100,000 hosts used one after another leave no records behind: the heap
 * in use (malloc's count) does not grow with them. */
TEST(idle_hosts_are_forgotten) {
  bh__hostq *q = bh__hostq_new(1);
  bh__hostq_wait a = {0}, b = {0};
  char key[32];
  long heap0, i;

  ASSERT(q != NULL);
  heap0 = (long)mallinfo2().uordblks;
  for (i = 0; i < 100000; i++) {
    snprintf(key, sizeof(key), "http://h%ld:80", i);
    ASSERT_INT_EQ(bh__hostq_enter(q, key, &a), 1);
    ASSERT_INT_EQ(bh__hostq_enter(q, key, &b), 0);
    bh__hostq_cancel(q, &b);
    ASSERT(bh__hostq_leave(q, &a) == NULL);
  }
  ASSERT((long)mallinfo2().uordblks - heap0 < 4096);
  bh__hostq_free(q);
  return 0;
}

TEST_MAIN(TEST_ENTRY(limit_per_key_and_first_come_first_served),
          TEST_ENTRY(slots_come_back_whole),
          TEST_ENTRY(idle_hosts_are_forgotten))
