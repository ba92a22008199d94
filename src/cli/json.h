// Just enough JSON for the profile: reading the flat objects bench/numpy_ref.py
// prints and writing values.
#pragma once

#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>

namespace tmath::cli {

// Reads nested objects into "outer/inner" -> raw value text (strings unquoted).
class JsonReader {
 public:
  explicit JsonReader(const std::string& s) : s_(s) {}
  bool parse(std::map<std::string, std::string>& out) {
    skip_ws();
    return value("", out);
  }

 private:
  bool value(const std::string& path, std::map<std::string, std::string>& out) {
    skip_ws();
    if (pos_ >= s_.size()) return false;
    if (s_[pos_] == '{') {
      ++pos_;
      skip_ws();
      if (peek('}')) return ++pos_, true;
      while (true) {
        std::string key;
        skip_ws();
        if (!string(key)) return false;
        skip_ws();
        if (!peek(':')) return false;
        ++pos_;
        if (!value(path.empty() ? key : path + "/" + key, out)) return false;
        skip_ws();
        if (peek(',')) {
          ++pos_;
          continue;
        }
        if (peek('}')) return ++pos_, true;
        return false;
      }
    }
    if (s_[pos_] == '"') {
      std::string v;
      if (!string(v)) return false;
      out[path] = v;
      return true;
    }
    const size_t start = pos_;
    while (pos_ < s_.size() && std::string_view(",}] \n\r\t").find(s_[pos_]) == std::string::npos) {
      ++pos_;
    }
    out[path] = s_.substr(start, pos_ - start);
    return pos_ > start;
  }
  bool string(std::string& v) {
    if (!peek('"')) return false;
    ++pos_;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;
      v += s_[pos_++];
    }
    if (pos_ >= s_.size()) return false;
    ++pos_;
    return true;
  }
  bool peek(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  void skip_ws() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  const std::string& s_;
  size_t pos_ = 0;
};

inline std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

inline std::string json_number(double v) {
  if (std::isnan(v) || std::isinf(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace tmath::cli
