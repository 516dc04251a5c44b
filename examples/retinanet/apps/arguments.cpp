#include "arguments.hpp"

#include <sstream>

#include "support/check.hpp"

namespace retinanet::apps {

arguments::arguments(int argc, char** argv, std::map<std::string, std::string> known, std::string usage)
    : known_(std::move(known)), usage_(std::move(usage)) {
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            help_ = true;
            continue;
        }
        require(arg.rfind("--", 0) == 0 && arg.size() > 2, "arguments", "argument " + std::to_string(i),
                "an option --name (see --help)", "'" + arg + "'");
        const std::string name = arg.substr(2);
        const auto it = known_.find(name);
        require(it != known_.end(), "arguments", "option", "one of the options in --help", "'--" + name + "'");
        if (!it->second.empty() && it->second[0] == '!') {
            values_[name] = "1";
            continue;
        }
        require(i + 1 < argc, "arguments", "--" + name, "followed by a value", "nothing");
        values_[name] = argv[++i];
    }
}

std::string arguments::text(const std::string& name, const std::string& fallback) const {
    const auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
}

double arguments::number(const std::string& name, double fallback) const {
    const auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    std::size_t used = 0;
    double v = 0;
    try {
        v = std::stod(it->second, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    require(used == it->second.size() && used > 0, "arguments", "--" + name, "a number", "'" + it->second + "'");
    return v;
}

long long arguments::integer(const std::string& name, long long fallback) const {
    const auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    std::size_t used = 0;
    long long v = 0;
    try {
        v = std::stoll(it->second, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    require(used == it->second.size() && used > 0, "arguments", "--" + name, "an integer", "'" + it->second + "'");
    return v;
}

std::string arguments::usage() const {
    std::ostringstream out;
    out << usage_ << "\n\noptions:\n";
    for (const auto& [name, help] : known_) out << "  --" << name << "  " << (!help.empty() && help[0] == '!' ? help.substr(1) : help) << "\n";
    return out.str();
}

}  // namespace retinanet::apps
