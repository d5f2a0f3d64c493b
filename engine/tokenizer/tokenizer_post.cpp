// SPDX-License-Identifier: MIT
// tokenizer.json post-processors, single-sequence case: TemplateProcessing, ByteLevel (ids
// unchanged), BertProcessing / RobertaProcessing ([CLS] A [SEP]), Sequence.
#include "tokenizer/tokenizer_impl.h"

#include "moewb/core/error.h"

namespace moewb::tok {

namespace {

void apply(const json& j, const std::string& where, PostProcessor& pp)
{
    const std::string type = typeOf(j);
    const std::string w = where + ": post_processor " + type;
    if (type == "ByteLevel")
        return;
    if (type == "Sequence") {
        for (const auto& x : j.at("processors"))
            apply(x, where, pp);
        return;
    }
    if (type == "BertProcessing" || type == "RobertaProcessing") {
        // "cls": ["[CLS]", 101], "sep": ["[SEP]", 102]
        pp.prefix.insert(pp.prefix.begin(), j.at("cls").at(1).get<int32_t>());
        pp.suffix.push_back(j.at("sep").at(1).get<int32_t>());
        return;
    }
    if (type == "TemplateProcessing") {
        const json& single = j.at("single");
        if (!single.is_array())
            throw InputError(w, "'single' must be a list of {SpecialToken|Sequence} pieces");
        const json& specials = j.value("special_tokens", json::object());
        std::vector<int32_t> before, after;
        int sequences = 0;
        for (const json& item : single) {
            if (item.contains("Sequence")) {
                if (item["Sequence"].value("id", std::string("A")) != "A")
                    throw InputError(w, "the single template may only use sequence A");
                ++sequences;
                continue;
            }
            if (!item.contains("SpecialToken"))
                throw InputError(w, "template piece " + item.dump() + " is neither SpecialToken nor Sequence");
            const std::string id = item["SpecialToken"].at("id").get<std::string>();
            if (!specials.contains(id))
                throw InputError(w, "special token '" + id + "' is missing from special_tokens");
            auto& dst = sequences ? after : before;
            for (const json& x : specials[id].at("ids"))
                dst.push_back(x.get<int32_t>());
        }
        if (sequences != 1)
            throw InputError(w, "the single template must contain $A exactly once");
        pp.prefix.insert(pp.prefix.begin(), before.begin(), before.end());
        pp.suffix.insert(pp.suffix.end(), after.begin(), after.end());
        return;
    }
    throw InputError(where, "post_processor '" + type + "' is not supported");
}

} // namespace

PostProcessor makePostProcessor(const json& j, const std::string& where)
{
    PostProcessor pp;
    if (!j.is_null())
        apply(j, where, pp);
    return pp;
}

} // namespace moewb::tok
