// A small "--name value" command-line parser for the example programs: typed getters with
// defaults, a usage text, and focal::error for unknown options or malformed values.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

namespace retinanet::apps {

class arguments {
public:
    // `known`: option names without "--", each with its help line; flags (no value) start with '!'.
    arguments(int argc, char** argv, std::map<std::string, std::string> known, std::string usage);

    bool has(const std::string& name) const { return values_.count(name) != 0; }
    bool flag(const std::string& name) const { return has(name); }
    std::string text(const std::string& name, const std::string& fallback) const;
    double number(const std::string& name, double fallback) const;
    long long integer(const std::string& name, long long fallback) const;
    bool help() const { return help_; }
    std::string usage() const;

private:
    std::map<std::string, std::string> known_, values_;
    std::string usage_;
    bool help_ = false;
};

}  // namespace retinanet::apps
