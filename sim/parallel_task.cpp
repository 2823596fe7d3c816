#include "sim/parallel_task.hpp"

namespace tcsim::sim {

void pack_tasks(const std::vector<simgrid::s4u::Host*>& hosts, const std::vector<HostPair>& pairs, size_t max_hosts,
                std::vector<TaskSpec>& out) {
  const bool cut = hosts.size() > max_hosts && pairs.size() <= 2 * hosts.size();
  std::vector<int> pos(hosts.size(), -1);  // host -> position in the task being built
  std::vector<uint32_t> members;
  size_t first = 0;  // first pair of the task being built
  auto add_host = [&](uint32_t h) {
    if (pos[h] < 0) {
      pos[h] = static_cast<int>(members.size());
      members.push_back(h);
    }
  };
  auto emit = [&](size_t end) {
    TaskSpec task;
    const size_t k = members.size();
    task.hosts.reserve(k);
    for (uint32_t h : members) task.hosts.push_back(hosts[h]);
    task.bytes.assign(k * k, 0.0);
    for (size_t i = first; i < end; ++i) task.bytes[pos[pairs[i].from] * k + pos[pairs[i].to]] += pairs[i].bytes;
    out.push_back(std::move(task));
    for (uint32_t h : members) pos[h] = -1;
    members.clear();
    first = end;
  };
  const size_t room = cut ? max_hosts : hosts.size();
  for (size_t i = 0; i < pairs.size(); ++i) {
    const size_t fresh = (pos[pairs[i].from] < 0) + (pos[pairs[i].to] < 0 && pairs[i].to != pairs[i].from);
    if (i > first && members.size() + fresh > room) emit(i);
    add_host(pairs[i].from);
    add_host(pairs[i].to);
  }
  if (!pairs.empty()) emit(pairs.size());
}

}  // namespace tcsim::sim
