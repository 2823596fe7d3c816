// sim/event_queue.hpp: the executor's event heap pops in (time, seq) order, exactly as
// std::priority_queue ordered by (time, seq) did, including ties in time (events of one
// instant leave in the order they were queued) and times interleaved with pops.
#include <gtest/gtest.h>

#include <cstdint>
#include <queue>
#include <random>
#include <vector>

#include "sim/event_queue.hpp"

namespace {

struct Ev {
  double time;
  uint64_t seq;
  int payload;
};

struct Later {
  bool operator()(const Ev& a, const Ev& b) const { return a.time != b.time ? a.time > b.time : a.seq > b.seq; }
};

TEST(EventQueue, PopsInTimeThenIssueOrderAsAPriorityQueue) {
  std::mt19937_64 rng(7);
  // Few distinct times: many ties, which seq must break. Zero included (the first events).
  std::uniform_int_distribution<int> coarse(0, 40), action(0, 2);
  tcsim::sim::EventQueue<Ev> q;
  std::priority_queue<Ev, std::vector<Ev>, Later> ref;
  uint64_t seq = 0;
  double now = 0;
  size_t popped = 0, ties = 0;
  double last_time = -1;
  for (int step = 0; step < 200000; ++step) {
    if (ref.empty() || action(rng) != 0) {
      // As the executor: a new event at now + a duration (possibly 0).
      const Ev e{now + 0.25 * coarse(rng), seq++, step};
      q.push(e);
      ref.push(e);
    } else {
      ASSERT_EQ(q.size(), ref.size());
      const Ev a = q.top(), b = ref.top();
      ASSERT_EQ(a.time, b.time) << "pop " << popped;
      ASSERT_EQ(a.seq, b.seq) << "pop " << popped;
      ASSERT_EQ(a.payload, b.payload);
      ties += a.time == last_time;
      last_time = a.time;
      now = a.time;
      q.pop();
      ref.pop();
      ++popped;
    }
  }
  while (!ref.empty()) {
    ASSERT_FALSE(q.empty());
    ASSERT_EQ(q.top().seq, ref.top().seq);
    q.pop();
    ref.pop();
  }
  EXPECT_TRUE(q.empty());
  EXPECT_GT(popped, 50000u);
  EXPECT_GT(ties, 1000u);  // the test exercised equal times
}

// Times of very different magnitudes (as a step's microsecond ops and its seconds-long end):
// the IEEE bit patterns of non-negative doubles order as the values do.
TEST(EventQueue, OrdersTimesAcrossMagnitudes) {
  tcsim::sim::EventQueue<Ev> q;
  const std::vector<double> times = {12.5, 0.0, 1e-9, 3.0e-6, 1e6, 0.5, 2.0, 1e-300, 7.25};
  uint64_t seq = 0;
  for (double t : times) q.push(Ev{t, seq++, 0});
  std::vector<double> out;
  while (!q.empty()) {
    out.push_back(q.top().time);
    q.pop();
  }
  EXPECT_EQ(out, (std::vector<double>{0.0, 1e-300, 1e-9, 3.0e-6, 0.5, 2.0, 7.25, 12.5, 1e6}));
}

}  // namespace
