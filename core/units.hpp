// Strong unit types. A Quantity carries its dimension as exponents of
// (bytes, seconds, flops, joules) in its type, so Bytes / BytesPerSecond is Seconds
// and adding a latency to a bandwidth does not compile. Values are SI base units
// (byte, second, floating-point operation, joule) held in a double.
#pragma once

#include <cmath>
#include <compare>

namespace tcsim::core {

template <int B, int T, int F, int E>
class Quantity {
public:
  constexpr Quantity() = default;
  constexpr explicit Quantity(double value) : value_(value) {}

  /// The value in SI base units (bytes, seconds, FLOP, joules and their ratios).
  [[nodiscard]] constexpr double value() const { return value_; }

  constexpr Quantity operator+(Quantity o) const { return Quantity(value_ + o.value_); }
  constexpr Quantity operator-(Quantity o) const { return Quantity(value_ - o.value_); }
  constexpr Quantity operator-() const { return Quantity(-value_); }
  constexpr Quantity& operator+=(Quantity o) { value_ += o.value_; return *this; }
  constexpr Quantity& operator-=(Quantity o) { value_ -= o.value_; return *this; }
  constexpr Quantity operator*(double k) const { return Quantity(value_ * k); }
  constexpr Quantity operator/(double k) const { return Quantity(value_ / k); }
  constexpr Quantity& operator*=(double k) { value_ *= k; return *this; }
  constexpr Quantity& operator/=(double k) { value_ /= k; return *this; }
  friend constexpr Quantity operator*(double k, Quantity q) { return Quantity(k * q.value_); }
  constexpr auto operator<=>(const Quantity&) const = default;

private:
  double value_ = 0.0;
};

// Dimensionless results collapse to double.
template <int B, int T, int F, int E, int B2, int T2, int F2, int E2>
constexpr auto operator*(Quantity<B, T, F, E> a, Quantity<B2, T2, F2, E2> b) {
  if constexpr (B + B2 == 0 && T + T2 == 0 && F + F2 == 0 && E + E2 == 0)
    return a.value() * b.value();
  else
    return Quantity<B + B2, T + T2, F + F2, E + E2>(a.value() * b.value());
}
template <int B, int T, int F, int E, int B2, int T2, int F2, int E2>
constexpr auto operator/(Quantity<B, T, F, E> a, Quantity<B2, T2, F2, E2> b) {
  if constexpr (B == B2 && T == T2 && F == F2 && E == E2)
    return a.value() / b.value();
  else
    return Quantity<B - B2, T - T2, F - F2, E - E2>(a.value() / b.value());
}

using Bytes = Quantity<1, 0, 0, 0>;
using Seconds = Quantity<0, 1, 0, 0>;
using BytesPerSecond = Quantity<1, -1, 0, 0>;
using Flops = Quantity<0, 0, 1, 0>;               ///< an amount of floating-point operations
using FlopsPerSecond = Quantity<0, -1, 1, 0>;     ///< a compute rate
using Joules = Quantity<0, 0, 0, 1>;
using Watts = Quantity<0, -1, 0, 1>;

namespace literals {
constexpr Bytes operator""_B(long double v) { return Bytes(static_cast<double>(v)); }
constexpr Bytes operator""_B(unsigned long long v) { return Bytes(static_cast<double>(v)); }
constexpr Bytes operator""_GiB(unsigned long long v) { return Bytes(static_cast<double>(v) * 1073741824.0); }
constexpr Bytes operator""_MiB(unsigned long long v) { return Bytes(static_cast<double>(v) * 1048576.0); }
constexpr Seconds operator""_s(long double v) { return Seconds(static_cast<double>(v)); }
constexpr Seconds operator""_us(long double v) { return Seconds(static_cast<double>(v) * 1e-6); }
constexpr Seconds operator""_us(unsigned long long v) { return Seconds(static_cast<double>(v) * 1e-6); }
constexpr BytesPerSecond operator""_GBps(long double v) { return BytesPerSecond(static_cast<double>(v) * 1e9); }
constexpr BytesPerSecond operator""_GBps(unsigned long long v) { return BytesPerSecond(static_cast<double>(v) * 1e9); }
constexpr FlopsPerSecond operator""_TFLOPS(unsigned long long v) { return FlopsPerSecond(static_cast<double>(v) * 1e12); }
constexpr FlopsPerSecond operator""_TFLOPS(long double v) { return FlopsPerSecond(static_cast<double>(v) * 1e12); }
}  // namespace literals

}  // namespace tcsim::core
