// SPDX-License-Identifier: MIT
// Task files: layout detection and the harness's prompt formatting for each layout (tasks.h).
#include "moewb/eval/tasks.h"

#include "moewb/core/error.h"
#include "moewb/core/text_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace moewb {

const char* taskLayoutName(TaskLayout layout)
{
    switch (layout) {
    case TaskLayout::HellaSwag: return "hellaswag";
    case TaskLayout::Piqa: return "piqa";
    case TaskLayout::Arc: return "arc";
    case TaskLayout::WinoGrande: return "winogrande";
    case TaskLayout::Lambada: return "lambada";
    case TaskLayout::Generic: return "generic";
    }
    return "generic";
}

namespace {

using json = nlohmann::json;

int64_t codePoints(const std::string& s)
{
    int64_t n = 0;
    for (unsigned char c : s)
        n += (c & 0xC0) != 0x80;
    return n;
}

bool isSpace(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string strip(const std::string& s)
{
    size_t b = 0, e = s.size();
    while (b < e && isSpace(s[b]))
        ++b;
    while (e > b && isSpace(s[e - 1]))
        --e;
    return s.substr(b, e - b);
}

std::string replaceAll(const std::string& s, const std::string& from, const std::string& to)
{
    std::string out;
    size_t pos = 0;
    for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size())
        out += s.substr(pos, hit - pos) + to;
    return out + s.substr(pos);
}

/// The harness's hellaswag preprocess(): strip, " [title]" → ". ", drop "[...]" (not across a
/// newline, shortest match), then one pass of "  " → " ".
std::string hellaswagPreprocess(const std::string& text)
{
    const std::string s = replaceAll(strip(text), " [title]", ". ");
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '[') {
            size_t j = i + 1;
            while (j < s.size() && s[j] != ']' && s[j] != '\n')
                ++j;
            if (j < s.size() && s[j] == ']') {
                i = j;
                continue;
            }
        }
        out += s[i];
    }
    return replaceAll(out, "  ", " ");
}

/// Python str.capitalize() on ASCII: first character upper, the rest lower.
std::string capitalize(const std::string& s)
{
    std::string out = s;
    for (size_t i = 0; i < out.size(); ++i) {
        const char c = out[i];
        if (i == 0 && c >= 'a' && c <= 'z')
            out[i] = char(c - 'a' + 'A');
        else if (i > 0 && c >= 'A' && c <= 'Z')
            out[i] = char(c - 'A' + 'a');
    }
    return out;
}

struct Line {
    const json& j;
    std::string where;

    [[noreturn]] void fail(const std::string& problem) const { throw InputError(where, problem); }

    bool has(const char* key) const { return j.contains(key); }

    std::string str(const char* key) const
    {
        if (!j.contains(key))
            fail(std::string("missing key '") + key + "'");
        if (!j[key].is_string())
            fail(std::string("'") + key + "' must be a string");
        return j[key].get<std::string>();
    }

    std::vector<std::string> strings(const json& a, const std::string& what) const
    {
        if (!a.is_array() || a.empty())
            fail("'" + what + "' must be a non-empty array of strings");
        std::vector<std::string> out;
        for (const json& v : a) {
            if (!v.is_string())
                fail("'" + what + "' must be a non-empty array of strings");
            out.push_back(v.get<std::string>());
        }
        return out;
    }

    /// An integer label (JSON number or a string of digits, as HF's hellaswag stores it) in [0, n).
    int64_t label(const char* key, size_t n) const
    {
        if (!j.contains(key))
            fail(std::string("missing key '") + key + "'");
        const json& v = j[key];
        int64_t l = -1;
        if (v.is_number_integer())
            l = v.get<int64_t>();
        else if (v.is_string() && !v.get<std::string>().empty()
                 && v.get<std::string>().find_first_not_of("0123456789") == std::string::npos
                 && v.get<std::string>().size() < 10)
            l = std::stoll(v.get<std::string>());
        else
            fail(std::string("'") + key + "' must be an integer");
        if (l < 0 || l >= int64_t(n))
            fail(std::string("'") + key + "' " + std::to_string(l) + " is out of range for " + std::to_string(n)
                 + " choices");
        return l;
    }
};

TaskLayout detect(const Line& ln)
{
    if (ln.has("ctx_a") || (ln.has("ctx") && ln.has("endings")))
        return TaskLayout::HellaSwag;
    if (ln.has("goal") && ln.has("sol1"))
        return TaskLayout::Piqa;
    if (ln.has("question") && ln.has("answerKey"))
        return TaskLayout::Arc;
    if (ln.has("sentence") && ln.has("option1"))
        return TaskLayout::WinoGrande;
    if (ln.has("context") && ln.has("choices"))
        return TaskLayout::Generic;
    if (ln.has("text"))
        return TaskLayout::Lambada;
    std::string keys;
    for (auto it = ln.j.begin(); it != ln.j.end(); ++it)
        keys += (keys.empty() ? "" : ", ") + it.key();
    ln.fail("unknown task layout (keys: " + keys
            + "); expected HellaSwag (ctx, endings, label), PIQA (goal, sol1, sol2, label), ARC (question, choices, "
              "answerKey), WinoGrande (sentence, option1, option2, answer), LAMBADA (text) or generic (context, "
              "choices, label)");
}

/// Choices with continuation " " + choice (the harness's default target_delimiter).
void addSpaced(TaskItem& item, const std::string& context, const std::vector<std::string>& choices)
{
    for (const std::string& c : choices)
        item.choices.push_back(TaskChoice{context, " " + c, std::max<int64_t>(1, codePoints(c))});
}

TaskItem parseItem(const Line& ln, TaskLayout layout)
{
    TaskItem item;
    if (ln.has("domain")) {
        if (!ln.j["domain"].is_string())
            ln.fail("'domain' must be a string");
        item.domain = ln.j["domain"].get<std::string>();
    }
    switch (layout) {
    case TaskLayout::HellaSwag: {
        std::string ctx = ln.has("ctx_a") ? ln.str("ctx_a") + " " + capitalize(ln.has("ctx_b") ? ln.str("ctx_b") : "")
                                          : ln.str("ctx");
        if (ln.has("activity_label"))
            ctx = ln.str("activity_label") + ": " + ctx;
        if (!ln.has("endings"))
            ln.fail("missing key 'endings'");
        std::vector<std::string> endings = ln.strings(ln.j["endings"], "endings");
        for (std::string& e : endings)
            e = hellaswagPreprocess(e);
        addSpaced(item, hellaswagPreprocess(ctx), endings);
        item.label = ln.label("label", endings.size());
        break;
    }
    case TaskLayout::Piqa:
        addSpaced(item, "Question: " + ln.str("goal") + "\nAnswer:", {ln.str("sol1"), ln.str("sol2")});
        item.label = ln.label("label", 2);
        break;
    case TaskLayout::Arc: {
        if (!ln.has("choices") || !ln.j["choices"].is_object() || !ln.j["choices"].contains("text")
            || !ln.j["choices"].contains("label"))
            ln.fail("'choices' must be an object with 'text' and 'label' arrays");
        const std::vector<std::string> text = ln.strings(ln.j["choices"]["text"], "choices.text");
        const std::vector<std::string> labels = ln.strings(ln.j["choices"]["label"], "choices.label");
        if (text.size() != labels.size())
            ln.fail("'choices.text' and 'choices.label' differ in length");
        const std::string key = ln.str("answerKey");
        const auto hit = std::find(labels.begin(), labels.end(), key);
        if (hit == labels.end())
            ln.fail("answerKey '" + key + "' is not one of choices.label");
        addSpaced(item, "Question: " + ln.str("question") + "\nAnswer:", text);
        item.label = int64_t(hit - labels.begin());
        break;
    }
    case TaskLayout::WinoGrande: {
        const std::string s = ln.str("sentence");
        const size_t idx = s.find('_');
        if (idx == std::string::npos)
            ln.fail("'sentence' has no '_' blank");
        const std::string cont = " " + strip(s.substr(idx + 1));
        for (const char* key : {"option1", "option2"}) {
            const std::string ctx = s.substr(0, idx) + ln.str(key);
            item.choices.push_back(TaskChoice{ctx, cont, std::max<int64_t>(1, codePoints(ctx))});
        }
        if (!ln.has("answer"))
            ln.fail("missing key 'answer'");
        const json& a = ln.j["answer"];
        const std::string ans = a.is_string() ? a.get<std::string>() : a.is_number_integer() ? std::to_string(a.get<int64_t>()) : "";
        if (ans != "1" && ans != "2")
            ln.fail("'answer' must be \"1\" or \"2\"");
        item.label = ans == "1" ? 0 : 1;
        break;
    }
    case TaskLayout::Lambada: {
        const std::string t = ln.str("text");
        const size_t cut = t.rfind(' ');
        if (cut == std::string::npos || cut == 0 || cut + 1 == t.size())
            ln.fail("'text' needs a context, a space and a last word");
        const std::string word = t.substr(cut + 1);
        item.choices.push_back(TaskChoice{t.substr(0, cut), " " + word, std::max<int64_t>(1, codePoints(word))});
        item.label = 0;
        break;
    }
    case TaskLayout::Generic: {
        if (!ln.j["context"].is_string())
            ln.fail("'context' must be a string");
        const std::vector<std::string> choices = ln.strings(ln.j["choices"], "choices");
        addSpaced(item, ln.str("context"), choices);
        item.label = ln.label("label", choices.size());
        break;
    }
    }
    if (layout != TaskLayout::Lambada && item.choices.size() < 2)
        ln.fail("a multiple-choice item needs at least 2 choices");
    return item;
}

std::string stem(const std::string& path)
{
    const size_t slash = path.find_last_of('/');
    std::string s = slash == std::string::npos ? path : path.substr(slash + 1);
    const size_t dot = s.rfind('.');
    return dot == std::string::npos || dot == 0 ? s : s.substr(0, dot);
}

} // namespace

TaskSet parseTaskText(const std::string& text, const std::string& where, int64_t limit)
{
    TaskSet set;
    set.file = where;
    set.name = stem(where);
    std::istringstream in(text);
    std::string raw;
    bool haveLayout = false;
    for (int64_t lineNo = 1; std::getline(in, raw); ++lineNo) {
        if (limit > 0 && int64_t(set.items.size()) >= limit)
            break;
        if (strip(raw).empty())
            continue;
        const std::string loc = where + ":" + std::to_string(lineNo);
        json j;
        try {
            j = json::parse(raw);
        } catch (const json::parse_error& e) {
            std::string msg = e.what();
            const size_t colon = msg.find("parse error");
            throw InputError(loc, "invalid JSON: " + (colon == std::string::npos ? msg : msg.substr(colon)));
        }
        if (!j.is_object())
            throw InputError(loc, "expected a JSON object");
        const Line ln{j, loc};
        const TaskLayout layout = detect(ln);
        if (!haveLayout) {
            set.layout = layout;
            haveLayout = true;
        } else if (layout != set.layout) {
            ln.fail(std::string("item has the ") + taskLayoutName(layout) + " layout, earlier items the "
                    + taskLayoutName(set.layout) + " layout");
        }
        TaskItem item = parseItem(ln, layout);
        item.line = lineNo;
        set.items.push_back(std::move(item));
    }
    if (set.items.empty())
        throw InputError(where, "no task items");
    return set;
}

TaskSet loadTaskFile(const std::string& path, int64_t limit)
{
    return parseTaskText(readFileBytes(path), path, limit);
}

} // namespace moewb
