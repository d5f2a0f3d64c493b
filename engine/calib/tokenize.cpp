// SPDX-License-Identifier: MIT
// modelTokenizer(): kept apart from the rest of calib so that tests and tools that only feed
// pre-tokenized ids never pull the tokenizer into their link.
#include "moewb/calib/calibrate.h"

#include "moewb/tokenizer/tokenizer.h"

#include <memory>

namespace moewb {

TokenizeFn modelTokenizer(const std::string& modelDir)
{
    auto cached = std::make_shared<std::shared_ptr<Tokenizer>>();
    return [cached, modelDir](const std::string& text) {
        if (!*cached)
            *cached = Tokenizer::load(modelDir);
        return (*cached)->encode(text, /*addSpecialTokens=*/true);
    };
}

} // namespace moewb
