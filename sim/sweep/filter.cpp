#include "sim/sweep/filter.hpp"

#include <cctype>
#include <cmath>
#include <functional>
#include <optional>
#include <vector>

#include "core/error.hpp"
#include "core/quantity.hpp"

namespace tcsim::sweep {

namespace {

// A value in the expression: a boolean, or a text that may also read as a number with a
// dimension ("" for plain numbers, "B/s", "s", "B", "FLOP/s", "W").
struct Value {
  enum class Kind { Bool, Text } kind = Kind::Text;
  bool b = false;
  std::string text;
  std::optional<double> num;
  std::string dim;
};

Value from_text(const std::string& text) {
  Value v;
  v.text = text;
  const std::string w = "filter value";
  auto attempt = [&](auto parse, const char* dim) {
    if (v.num) return;
    try {
      v.num = parse(text, w);
      v.dim = dim;
    } catch (const core::InputError&) {
    }
  };
  attempt([](std::string_view t, const std::string& ww) { return core::parse_number(t, ww); }, "");
  attempt([](std::string_view t, const std::string& ww) { return core::parse_bandwidth(t, ww).value(); }, "B/s");
  attempt([](std::string_view t, const std::string& ww) { return core::parse_flops_rate(t, ww).value(); }, "FLOP/s");
  attempt([](std::string_view t, const std::string& ww) { return core::parse_seconds(t, ww).value(); }, "s");
  attempt([](std::string_view t, const std::string& ww) { return core::parse_bytes(t, ww).value(); }, "B");
  attempt([](std::string_view t, const std::string& ww) { return core::parse_watts(t, ww).value(); }, "W");
  return v;
}

Value from_number(double x, const std::string& dim) {
  Value v;
  v.num = x;
  v.dim = dim;
  v.text = core::format_number(x);
  return v;
}

Value from_bool(bool b) {
  Value v;
  v.kind = Value::Kind::Bool;
  v.b = b;
  v.text = b ? "true" : "false";
  return v;
}

enum class Tok { End, Key, Literal, String, Op, LParen, RParen };

struct Token {
  Tok kind = Tok::End;
  std::string text;
  std::size_t pos = 0;
};

}  // namespace

struct Filter::Node {
  enum class Kind { Key, Literal, Not, Neg, Binary } kind = Kind::Literal;
  std::string text;  // key name, literal text or operator
  Value literal;
  std::unique_ptr<Node> a, b;
};

namespace {

class Parser {
public:
  Parser(const std::string& text, const std::string& where, std::set<std::string>& keys)
      : text_(text), where_(where), keys_(keys) {
    tokenize();
  }

  std::unique_ptr<Filter::Node> parse() {
    auto n = parse_or();
    if (peek().kind != Tok::End) fail(peek(), "unexpected '" + peek().text + "'");
    return n;
  }

private:
  [[noreturn]] void fail(const Token& t, const std::string& what) const {
    throw core::InputError(where_, what + " at column " + std::to_string(t.pos + 1) + " of \"" + text_ +
                                       "\" (operators: || && ! == != < <= > >= + - * /, parentheses, keys such as "
                                       "plan.tp, numbers, quantities like 400GBps, 'quoted text')");
  }

  void tokenize() {
    std::size_t i = 0;
    const std::string& s = text_;
    while (i < s.size()) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      if (std::isspace(c)) {
        ++i;
        continue;
      }
      Token t;
      t.pos = i;
      if (std::isalpha(c) || c == '_') {
        std::size_t j = i;
        while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_' || s[j] == '.')) ++j;
        t.text = s.substr(i, j - i);
        t.kind = (t.text == "true" || t.text == "false") ? Tok::Literal : Tok::Key;
        i = j;
      } else if (std::isdigit(c) || (c == '.' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
        std::size_t j = i;
        while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '.')) ++j;
        if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
          std::size_t k = j + 1;
          if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
          if (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]))) {
            while (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]))) ++k;
            j = k;
          }
        }
        while (j < s.size() && (std::isalpha(static_cast<unsigned char>(s[j])) || s[j] == '/')) ++j;
        t.kind = Tok::Literal;
        t.text = s.substr(i, j - i);
        i = j;
      } else if (c == '\'' || c == '"') {
        std::size_t j = s.find(static_cast<char>(c), i + 1);
        if (j == std::string::npos) {
          t.text = s.substr(i);
          fail(t, "unterminated string");
        }
        t.kind = Tok::String;
        t.text = s.substr(i + 1, j - i - 1);
        i = j + 1;
      } else if (c == '(' || c == ')') {
        t.kind = c == '(' ? Tok::LParen : Tok::RParen;
        t.text = std::string(1, static_cast<char>(c));
        ++i;
      } else {
        static const char* ops[] = {"||", "&&", "==", "!=", "<=", ">=", "<", ">", "!", "+", "-", "*", "/"};
        bool found = false;
        for (const char* op : ops) {
          std::string o(op);
          if (s.compare(i, o.size(), o) == 0) {
            t.kind = Tok::Op;
            t.text = o;
            i += o.size();
            found = true;
            break;
          }
        }
        if (!found) {
          t.text = std::string(1, static_cast<char>(c));
          fail(t, "unexpected character '" + t.text + "'");
        }
      }
      tokens_.push_back(t);
    }
    Token end;
    end.pos = s.size();
    end.text = "end of filter";
    tokens_.push_back(end);
  }

  const Token& peek() const { return tokens_[pos_]; }
  bool accept_op(const std::string& op) {
    if (peek().kind == Tok::Op && peek().text == op) {
      ++pos_;
      return true;
    }
    return false;
  }

  static std::unique_ptr<Filter::Node> binary(std::string op, std::unique_ptr<Filter::Node> a,
                                              std::unique_ptr<Filter::Node> b) {
    auto n = std::make_unique<Filter::Node>();
    n->kind = Filter::Node::Kind::Binary;
    n->text = std::move(op);
    n->a = std::move(a);
    n->b = std::move(b);
    return n;
  }

  std::unique_ptr<Filter::Node> parse_or() {
    auto n = parse_and();
    while (accept_op("||")) n = binary("||", std::move(n), parse_and());
    return n;
  }
  std::unique_ptr<Filter::Node> parse_and() {
    auto n = parse_not();
    while (accept_op("&&")) n = binary("&&", std::move(n), parse_not());
    return n;
  }
  std::unique_ptr<Filter::Node> parse_not() {
    if (accept_op("!")) {
      auto n = std::make_unique<Filter::Node>();
      n->kind = Filter::Node::Kind::Not;
      n->a = parse_not();
      return n;
    }
    return parse_cmp();
  }
  std::unique_ptr<Filter::Node> parse_cmp() {
    auto n = parse_sum();
    for (const char* op : {"==", "!=", "<=", ">=", "<", ">"}) {
      if (accept_op(op)) return binary(op, std::move(n), parse_sum());
    }
    return n;
  }
  std::unique_ptr<Filter::Node> parse_sum() {
    auto n = parse_prod();
    while (true) {
      if (accept_op("+")) n = binary("+", std::move(n), parse_prod());
      else if (accept_op("-")) n = binary("-", std::move(n), parse_prod());
      else return n;
    }
  }
  std::unique_ptr<Filter::Node> parse_prod() {
    auto n = parse_unary();
    while (true) {
      if (accept_op("*")) n = binary("*", std::move(n), parse_unary());
      else if (accept_op("/")) n = binary("/", std::move(n), parse_unary());
      else return n;
    }
  }
  std::unique_ptr<Filter::Node> parse_unary() {
    if (accept_op("-")) {
      auto n = std::make_unique<Filter::Node>();
      n->kind = Filter::Node::Kind::Neg;
      n->a = parse_unary();
      return n;
    }
    return parse_primary();
  }
  std::unique_ptr<Filter::Node> parse_primary() {
    const Token t = peek();
    auto n = std::make_unique<Filter::Node>();
    switch (t.kind) {
      case Tok::LParen: {
        ++pos_;
        auto inner = parse_or();
        if (peek().kind != Tok::RParen) fail(peek(), "expected ')'");
        ++pos_;
        return inner;
      }
      case Tok::Key:
        ++pos_;
        n->kind = Filter::Node::Kind::Key;
        n->text = t.text;
        keys_.insert(t.text);
        return n;
      case Tok::Literal:
        ++pos_;
        n->kind = Filter::Node::Kind::Literal;
        n->text = t.text;
        if (t.text == "true" || t.text == "false") n->literal = from_bool(t.text == "true");
        else {
          n->literal = from_text(t.text);
          if (!n->literal.num) fail(t, "'" + t.text + "' is neither a number nor a quantity with a known unit");
        }
        return n;
      case Tok::String:
        ++pos_;
        n->kind = Filter::Node::Kind::Literal;
        n->text = t.text;
        n->literal = from_text(t.text);
        return n;
      default:
        fail(t, "expected a key, a value or '(' but found '" + t.text + "'");
    }
  }

  const std::string& text_;
  const std::string& where_;
  std::set<std::string>& keys_;
  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
};

Value eval(const Filter::Node& n, const Settings& s, const std::string& where) {
  using K = Filter::Node::Kind;
  auto type_error = [&](const std::string& what) -> Value { throw core::InputError(where, what); };
  switch (n.kind) {
    case K::Literal:
      return n.literal;
    case K::Key: {
      auto it = s.find(n.text);
      if (it == s.end()) return type_error("key " + n.text + " is not set in this point");
      return from_text(it->second);
    }
    case K::Not: {
      Value a = eval(*n.a, s, where);
      if (a.kind != Value::Kind::Bool) return type_error("'!' needs a condition, got '" + a.text + "'");
      return from_bool(!a.b);
    }
    case K::Neg: {
      Value a = eval(*n.a, s, where);
      if (!a.num || a.kind == Value::Kind::Bool) return type_error("'-' needs a number, got '" + a.text + "'");
      return from_number(-*a.num, a.dim);
    }
    case K::Binary:
      break;
  }
  const std::string& op = n.text;
  if (op == "||" || op == "&&") {
    Value a = eval(*n.a, s, where);
    if (a.kind != Value::Kind::Bool) return type_error("'" + op + "' needs conditions, got '" + a.text + "'");
    if (op == "||" && a.b) return from_bool(true);
    if (op == "&&" && !a.b) return from_bool(false);
    Value b = eval(*n.b, s, where);
    if (b.kind != Value::Kind::Bool) return type_error("'" + op + "' needs conditions, got '" + b.text + "'");
    return from_bool(b.b);
  }
  Value a = eval(*n.a, s, where);
  Value b = eval(*n.b, s, where);
  const bool numeric = a.kind == Value::Kind::Text && b.kind == Value::Kind::Text && a.num && b.num && a.dim == b.dim;
  if (op == "==" || op == "!=") {
    bool eq;
    if (a.kind == Value::Kind::Bool || b.kind == Value::Kind::Bool) eq = a.kind == b.kind && a.b == b.b;
    else if (numeric) eq = *a.num == *b.num;
    else eq = a.text == b.text;
    return from_bool(op == "==" ? eq : !eq);
  }
  if (op == "<" || op == "<=" || op == ">" || op == ">=") {
    if (!numeric)
      return type_error("cannot order '" + a.text + "' and '" + b.text +
                        "' (only numbers, or quantities of the same dimension, compare with " + op + ")");
    double x = *a.num, y = *b.num;
    bool r = op == "<" ? x < y : op == "<=" ? x <= y : op == ">" ? x > y : x >= y;
    return from_bool(r);
  }
  // Arithmetic.
  if (a.kind == Value::Kind::Bool || b.kind == Value::Kind::Bool || !a.num || !b.num)
    return type_error("'" + op + "' needs numbers, got '" + a.text + "' and '" + b.text + "'");
  if (op == "+" || op == "-") {
    if (a.dim != b.dim) return type_error("cannot " + std::string(op == "+" ? "add" : "subtract") + " '" + a.text + "' and '" + b.text + "' (different units)");
    return from_number(op == "+" ? *a.num + *b.num : *a.num - *b.num, a.dim);
  }
  if (!a.dim.empty() && !b.dim.empty()) {
    if (op == "/" && a.dim == b.dim) return from_number(*a.num / *b.num, "");
    return type_error("cannot " + std::string(op == "*" ? "multiply" : "divide") + " '" + a.text + "' and '" + b.text + "' (both carry units)");
  }
  if (op == "*") return from_number(*a.num * *b.num, a.dim.empty() ? b.dim : a.dim);
  if (!b.dim.empty()) return type_error("cannot divide the plain number '" + a.text + "' by the quantity '" + b.text + "'");
  return from_number(*a.num / *b.num, a.dim);
}

}  // namespace

Filter::Filter(Filter&&) noexcept = default;
Filter& Filter::operator=(Filter&&) noexcept = default;
Filter::~Filter() = default;

Filter Filter::parse(const std::string& text, const std::string& where) {
  Filter f;
  f.text_ = text;
  f.where_ = where;
  Parser p(f.text_, f.where_, f.keys_);
  f.root_ = p.parse();
  return f;
}

bool Filter::matches(const Settings& settings) const {
  Value v = eval(*root_, settings, where_ + " (\"" + text_ + "\")");
  if (v.kind != Value::Kind::Bool)
    throw core::InputError(where_, "\"" + text_ + "\" is a value, not a condition (compare it, e.g. with ==)");
  return v.b;
}

const std::set<std::string>& Filter::keys() const { return keys_; }
const std::string& Filter::text() const { return text_; }

}  // namespace tcsim::sweep
