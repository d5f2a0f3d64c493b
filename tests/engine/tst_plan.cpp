// SPDX-License-Identifier: MIT
// Plan file (#7): JSON round trip, every validation error, expansion precedence, GPTQ byte
// accounting by hand, and the GPTQModel `dynamic` export re-expanded over the module list.
#include "moewb/plan/plan.h"
#include "moewb/plan/gptq_dynamic.h"
#include "moewb/core/error.h"
#include "moewb/hfconfig/hf_config.h"
#include "testutil.h"

#include <QDir>
#include <QFileInfo>
#include <QTemporaryDir>
#include <QtTest>

#include <random>

using namespace moewb;
using namespace moewb::test;

namespace {

Plan fullPlan()
{
    Plan p;
    p.defaults = {3, 64, false, "rtn", true};
    PlanRule r1;
    r1.match = ".*\\.self_attn\\..*";
    r1.set.bits = 8;
    r1.set.staticGroups = true;
    PlanRule r2;
    r2.match = ".*\\.experts\\.1\\..*";
    r2.set.groupSize = -1;
    r2.set.sym = true;
    r2.set.method = "gptq";
    r2.set.actOrder = false;
    p.rules = {r1, r2};
    p.overrides["model.layers.1.mlp.experts.0.down_proj"].bits = 16;
    p.droppedExperts = {{1, 2}, {2, 5}};
    p.droppedLayers = {3};
    p.droppedBlocks = {2};
    p.activationBits = 8;
    p.provenance.strategy = "frequency";
    p.provenance.targetBits = 2.5;
    p.provenance.targetBytes = 12345;
    p.provenance.achievedBits = 2.49;
    p.provenance.achievedBytes = 12000;
    p.provenance.seed = 42;
    p.provenance.params = "k=2";
    return p;
}

// planToJson as written before the settings became one table (#21).
const char* const kFullPlanJson = R"json({
  "format": "moewb-plan",
  "version": 1,
  "defaults": {
    "bits": 3,
    "group_size": 64,
    "sym": false,
    "method": "rtn",
    "act_order": true
  },
  "rules": [
    {
      "match": ".*\\.self_attn\\..*",
      "bits": 8,
      "static_groups": true
    },
    {
      "match": ".*\\.experts\\.1\\..*",
      "group_size": -1,
      "sym": true,
      "method": "gptq",
      "act_order": false
    }
  ],
  "overrides": {
    "model.layers.1.mlp.experts.0.down_proj": {
      "bits": 16
    }
  },
  "drop": {
    "experts": [
      [
        1,
        2
      ],
      [
        2,
        5
      ]
    ],
    "layers": [
      3
    ],
    "blocks": [
      2
    ]
  },
  "activation_bits": 8,
  "provenance": {
    "strategy": "frequency",
    "model": "",
    "stats": "",
    "architecture": "",
    "target_bits": 2.5,
    "target_bytes": 12345,
    "achieved_bits": 2.49,
    "achieved_bytes": 12000,
    "seed": 42,
    "params": "k=2",
    "tool_version": "",
    "created": ""
  }
}
)json";

// Every setting, in every place, keys in an order unlike the table's.
const char* const kEverySettingInput = R"json({"format":"moewb-plan","version":1,"defaults":{"prune_method":"wanda","pattern":"2:4","sparsity":0.5,"static_groups":true,"act_order":true,"method":"rtn","sym":false,"group_size":32,"bits":3},
            "rules":[{"prune_method":"magnitude","match":"a.*","sparsity":0.25,"bits":8,"pattern":"unstructured","static_groups":false,"act_order":false,"method":"gptq","sym":true,"group_size":-1},{"match":"b","sparsity":0}],
            "overrides":{"zz":{"bits":2,"sparsity":0.125,"pattern":"4:8","prune_method":"sparsegpt","method":"rtn","group_size":64,"sym":false,"act_order":true,"static_groups":true},"aa":{}},
            "drop":{"experts":[[1,2]],"layers":[3],"blocks":[]},"activation_bits":4,
            "provenance":{"strategy":"s","model":"m","stats":"st","architecture":"a","target_bits":2.25,"target_bytes":7,"achieved_bits":2.0,"achieved_bytes":6,"seed":1,"params":"p","tool_version":"t","created":"c"}})json";
const char* const kEverySettingJson = R"json({
  "format": "moewb-plan",
  "version": 1,
  "defaults": {
    "bits": 3,
    "group_size": 32,
    "sym": false,
    "method": "rtn",
    "act_order": true,
    "static_groups": true,
    "sparsity": 0.5,
    "pattern": "2:4",
    "prune_method": "wanda"
  },
  "rules": [
    {
      "match": "a.*",
      "bits": 8,
      "group_size": -1,
      "sym": true,
      "method": "gptq",
      "act_order": false,
      "static_groups": false,
      "sparsity": 0.25,
      "pattern": "unstructured",
      "prune_method": "magnitude"
    },
    {
      "match": "b",
      "sparsity": 0.0
    }
  ],
  "overrides": {
    "aa": {},
    "zz": {
      "bits": 2,
      "group_size": 64,
      "sym": false,
      "method": "rtn",
      "act_order": true,
      "static_groups": true,
      "sparsity": 0.125,
      "pattern": "4:8",
      "prune_method": "sparsegpt"
    }
  },
  "drop": {
    "experts": [
      [
        1,
        2
      ]
    ],
    "layers": [
      3
    ],
    "blocks": []
  },
  "activation_bits": 4,
  "provenance": {
    "strategy": "s",
    "model": "m",
    "stats": "st",
    "architecture": "a",
    "target_bits": 2.25,
    "target_bytes": 7,
    "achieved_bits": 2.0,
    "achieved_bytes": 6,
    "seed": 1,
    "params": "p",
    "tool_version": "t",
    "created": "c"
  }
}
)json";

std::string errorOf(const std::function<void()>& f)
{
    try {
        f();
    } catch (const InputError& e) {
        return e.what();
    }
    return "(no error)";
}

} // namespace

class TestPlan : public QObject {
    Q_OBJECT

private slots:
    void initTestCase()
    {
        QVERIFY(m_tmp.isValid());
        m_ds = m_tmp.filePath("ds");
        m_mx = m_tmp.filePath("mx");
        runPython({sourcePath("tests/reference/gen_random_model.py"), "deepseek", m_ds, "--tiny", "--layers", "4"});
        runPython({sourcePath("tests/reference/gen_random_model.py"), "mixtral", m_mx, "--tiny", "--layers", "3"});
        m_dsCfg = loadConfig(m_ds.toStdString());
        m_mxCfg = loadConfig(m_mx.toStdString());
    }

    void roundTrip()
    {
        const Plan p = fullPlan();
        const Plan q = parsePlanJson(planToJson(p), "mem");
        QVERIFY(p == q);
        const QString path = m_tmp.filePath("plan.json");
        savePlan(p, path.toStdString());
        QVERIFY(loadPlan(path.toStdString()) == p);
        // Atomic write: nothing but the plan is left in the directory.
        const QStringList left = QDir(m_tmp.path()).entryList({"plan.json*"}, QDir::Files);
        QCOMPARE(left, QStringList{"plan.json"});
        QVERIFY_THROWS_EXCEPTION(IoError, savePlan(p, m_tmp.filePath("no/such/dir/plan.json").toStdString()));
        QVERIFY_THROWS_EXCEPTION(IoError, loadPlan(m_tmp.filePath("missing.json").toStdString()));
        // Defaults only: everything else takes its default value.
        const Plan d = parsePlanJson("{\"format\":\"moewb-plan\",\"version\":1}", "mem");
        QCOMPARE(d.defaults.bits, int64_t(4));
        QCOMPARE(d.defaults.groupSize, int64_t(128));
        QCOMPARE(d.activationBits, int64_t(16));
        // static_groups: read from defaults, written only when set (older plans stay byte-identical).
        QVERIFY(!d.defaults.staticGroups);
        QVERIFY(planToJson(d).find("static_groups") == std::string::npos);
        const Plan sg = parsePlanJson(R"({"format":"moewb-plan","version":1,"defaults":{"static_groups":true}})", "mem");
        QVERIFY(sg.defaults.staticGroups);
        QVERIFY(parsePlanJson(planToJson(sg), "mem") == sg);
        QVERIFY(errorOf([] { parsePlanJson(R"({"format":"moewb-plan","version":1,"defaults":{"static_groups":1}})", "p.json"); })
                    .find("$.defaults.static_groups") != std::string::npos);
        // GGUF types (#26): ggml_type and the "gguf" object, written only when set.
        QVERIFY(planToJson(d).find("gguf") == std::string::npos && planToJson(d).find("ggml_type") == std::string::npos);
        const Plan g = parsePlanJson(
            R"({"format":"moewb-plan","version":1,"defaults":{"ggml_type":"q6_k"},"gguf":{"token_embd":"q4_k","output":"q6_k"}})",
            "mem");
        QCOMPARE(g.defaults.ggmlType, std::string("q6_k"));
        QCOMPARE(g.ggufTokenEmbd, std::string("q4_k"));
        QCOMPARE(g.ggufOutput, std::string("q6_k"));
        QVERIFY(parsePlanJson(planToJson(g), "mem") == g);
        QCOMPARE(errorOf([] { parsePlanJson(R"({"format":"moewb-plan","version":1,"gguf":{"output":"q7_k"}})", "p.json"); }),
                 std::string("p.json: $.gguf.output: ggml_type 'q7_k' is not one of q2_k, q3_k, q4_k, q5_k, q6_k, "
                             "iq4_nl, q4_0, q4_1, q5_0, q5_1, q8_0"));
        QVERIFY(errorOf([] { parsePlanJson(R"({"format":"moewb-plan","version":1,"gguf":{"embd":"q4_k"}})", "p.json"); })
                    .find("$.gguf") != std::string::npos);
    }

    void everySetting()
    {
        // One valid value for every setting, each different from its default: the table must list
        // exactly these keys, in the order plan files have them.
        const std::vector<std::pair<std::string, std::string>> sample = {
            {"bits", "8"}, {"group_size", "64"}, {"sym", "false"}, {"method", "\"rtn\""}, {"act_order", "true"},
            {"static_groups", "true"}, {"sparsity", "0.25"}, {"pattern", "\"2:4\""}, {"prune_method", "\"wanda\""},
            {"ggml_type", "\"q4_k\""}};
        std::vector<std::string> keys;
        forEachSetting([&](const auto& f) { keys.push_back(f.key); });
        QCOMPARE(keys.size(), sample.size());
        for (size_t i = 0; i < keys.size(); ++i)
            QCOMPARE(keys[i], sample[i].first);

        std::string all;
        for (const auto& [key, value] : sample) {
            all += (all.empty() ? "" : ",") + ("\"" + key + "\":" + value);
            // Alone in the defaults, a rule and an override: parsed into its own field only, written
            // back as given, and read again into the same plan.
            const std::string kv = "\"" + key + "\":" + value;
            const Plan p = parsePlanJson("{\"format\":\"moewb-plan\",\"version\":1,\"defaults\":{" + kv
                                             + "},\"rules\":[{\"match\":\"a\"," + kv + "}],\"overrides\":{\"m\":{"
                                             + kv + "}}}",
                                         "mem");
            int setInRule = 0, changedDefaults = 0;
            const PlanDefaults initial;
            forEachSetting([&](const auto& f) {
                setInRule += (p.rules[0].set.*f.set).has_value();
                changedDefaults += !(p.defaults.*f.defaults == initial.*f.defaults);
                if (f.key == key) {
                    QVERIFY2(p.rules[0].set.*f.set == p.overrides.at("m").*f.set, f.member);
                    QVERIFY2(*(p.rules[0].set.*f.set) == p.defaults.*f.defaults, f.member);
                }
            });
            QCOMPARE(setInRule, 1);
            QCOMPARE(changedDefaults, 1);
            const std::string json = planToJson(p);
            QVERIFY(parsePlanJson(json, "mem") == p);
            const std::string written = "\"" + key + "\": " + value;
            size_t count = 0;
            for (size_t at = json.find(written); at != std::string::npos; at = json.find(written, at + 1))
                ++count;
            QVERIFY2(count == 3, json.c_str()); // defaults, rule and override
        }
        // All together, in every place: the same plan after a round trip, and each key written once
        // a place in table order.
        const std::string text = "{\"format\":\"moewb-plan\",\"version\":1,\"defaults\":{" + all
            + "},\"rules\":[{\"match\":\"a\"," + all + "}],\"overrides\":{\"m\":{" + all + "}}}";
        const Plan p = parsePlanJson(text, "mem");
        QVERIFY(parsePlanJson(planToJson(p), "mem") == p);
        QCOMPARE(planToJson(parsePlanJson(planToJson(p), "mem")), planToJson(p));
        const std::vector<PlanEntry> es = expandPlan(p, m_dsCfg);
        QVERIFY(!es.empty());
        for (const PlanEntry& e : es) {
            LinearSettings want;
            want.bits = 8;
            want.groupSize = 64;
            want.sym = false;
            want.method = "rtn";
            want.actOrder = true;
            want.staticGroups = true;
            want.sparsity = 0.5; // 2:4 fixes it
            want.pattern = PrunePattern{2, 4};
            want.pruneMethod = "wanda";
            want.ggmlType = "q4_k";
            QVERIFY2(static_cast<const LinearSettings&>(e) == want, e.name.c_str());
        }
    }

    void byteIdenticalJson()
    {
        // Written by the plan code before the settings became one table (#21): plan files must not
        // change by a byte.
        QCOMPARE(QString::fromStdString(planToJson(fullPlan())), QString::fromUtf8(kFullPlanJson));
        QCOMPARE(QString::fromStdString(planToJson(parsePlanJson(kEverySettingInput, "mem"))),
                 QString::fromUtf8(kEverySettingJson));
    }

    void validationErrors_data()
    {
        QTest::addColumn<QString>("json");
        QTest::addColumn<QString>("expected");
        const QString h = "'format':'moewb-plan','version':1";
        QTest::newRow("not json") << "{" << "f.json: not valid JSON";
        QTest::newRow("format") << "{'format':'x','version':1}" << "f.json: $.format: expected \"moewb-plan\"";
        QTest::newRow("version") << "{'format':'moewb-plan','version':9}" << "f.json: $.version: unsupported version 9";
        QTest::newRow("unknown key") << "{" + h + ",'defualts':{}}" << "f.json: $.defualts: unknown key";
        QTest::newRow("bits") << "{" + h + ",'defaults':{'bits':5}}" << "f.json: $.defaults.bits: bits 5 not in {2,3,4,8,16}";
        QTest::newRow("bits type") << "{" + h + ",'defaults':{'bits':'4'}}" << "f.json: $.defaults.bits: expected an integer";
        QTest::newRow("group") << "{" + h + ",'defaults':{'group_size':100}}" << "f.json: $.defaults.group_size: group size 100 is invalid";
        QTest::newRow("group 0") << "{" + h + ",'rules':[{'match':'x','group_size':0}]}" << "f.json: $.rules[0].group_size: group size 0 is invalid";
        QTest::newRow("method") << "{" + h + ",'defaults':{'method':'awq'}}" << "f.json: $.defaults.method: method 'awq' is not rtn or gptq";
        QTest::newRow("bad regex") << "{" + h + ",'rules':[{'match':'a','bits':8},{'match':'(','bits':8}]}" << "f.json: $.rules[1].match: invalid regex '('";
        QTest::newRow("rule no match") << "{" + h + ",'rules':[{'bits':8}]}" << "f.json: $.rules[0].match: missing";
        QTest::newRow("rule bits") << "{" + h + ",'rules':[{'match':'a','bits':1}]}" << "f.json: $.rules[0].bits: bits 1 not in {2,3,4,8,16}";
        QTest::newRow("override bits") << "{" + h + ",'overrides':{'m.x':{'bits':6}}}" << "f.json: $.overrides[\"m.x\"].bits: bits 6 not in {2,3,4,8,16}";
        QTest::newRow("override key") << "{" + h + ",'overrides':{'m.x':{'match':'y'}}}" << "f.json: $.overrides[\"m.x\"].match: unknown key";
        QTest::newRow("drop pair") << "{" + h + ",'drop':{'experts':[[1]]}}" << "f.json: $.drop.experts[0]: expected a [layer, expert] pair";
        QTest::newRow("act bits") << "{" + h + ",'activation_bits':3}" << "f.json: $.activation_bits: 3 not in {4,8,16}";
    }
    void validationErrors()
    {
        QFETCH(QString, json);
        QFETCH(QString, expected);
        const std::string msg = errorOf([&] { parsePlanJson(QString(json).replace('\'', '"').toStdString(), "f.json"); });
        QVERIFY2(msg.rfind(expected.toStdString(), 0) == 0, msg.c_str());
    }

    void modelValidation_data()
    {
        QTest::addColumn<QString>("json");
        QTest::addColumn<QString>("expected");
        const QString h = "'format':'moewb-plan','version':1";
        QTest::newRow("unknown module") << "{" + h + ",'overrides':{'model.layers.9.mlp.experts.0.up_proj':{'bits':8}}}"
                                        << "p.json: $.overrides[\"model.layers.9.mlp.experts.0.up_proj\"]: unknown module";
        QTest::newRow("router") << "{" + h + ",'overrides':{'model.layers.1.mlp.gate':{'bits':8}}}"
                                << "p.json: $.overrides[\"model.layers.1.mlp.gate\"]: router is never quantized";
        QTest::newRow("dense layer expert") << "{" + h + ",'drop':{'experts':[[0,1]]}}"
                                            << "p.json: $.drop.experts[0]: layer 0 is not a MoE layer";
        QTest::newRow("expert range") << "{" + h + ",'drop':{'experts':[[1,6]]}}"
                                      << "p.json: $.drop.experts[0]: expert 6 out of range 0..5";
        QTest::newRow("layer") << "{" + h + ",'drop':{'layers':[0]}}" << "p.json: $.drop.layers[0]: layer 0 is not a MoE layer";
        QTest::newRow("block") << "{" + h + ",'drop':{'blocks':[4]}}" << "p.json: $.drop.blocks[0]: block 4 out of range";
    }
    void modelValidation()
    {
        QFETCH(QString, json);
        QFETCH(QString, expected);
        const Plan p = parsePlanJson(QString(json).replace('\'', '"').toStdString(), "p.json");
        const std::string msg = errorOf([&] { validatePlan(p, m_dsCfg, "p.json"); });
        QVERIFY2(msg.rfind(expected.toStdString(), 0) == 0, msg.c_str());
        QCOMPARE(QString::fromStdString(errorOf([&] { validatePlan(fullPlan(), m_dsCfg, "p.json"); })),
                 QStringLiteral("(no error)"));
    }

    void expansion()
    {
        const Plan p = fullPlan();
        const std::vector<PlanEntry> es = expandPlan(p, m_dsCfg);
        size_t quantizable = 0;
        for (const LinearInfo& li : listLinears(m_dsCfg))
            quantizable += isQuantizableRole(li.role);
        QCOMPARE(es.size(), quantizable);
        for (const PlanEntry& e : es) {
            QVERIFY(e.role != LinearRole::Router);
            const bool attn = e.name.find(".self_attn.") != std::string::npos;
            const bool exp1 = e.name.find(".experts.1.") != std::string::npos;
            if (e.name == "model.layers.1.mlp.experts.0.down_proj")
                QCOMPARE(e.bits, int64_t(16)); // override beats defaults
            else
                QCOMPARE(e.bits, attn ? int64_t(8) : int64_t(3));
            QCOMPARE(e.groupSize, exp1 ? int64_t(-1) : int64_t(64));
            QCOMPARE(e.sym, exp1);
            QCOMPARE(e.method, exp1 ? std::string("gptq") : std::string("rtn"));
            QCOMPARE(e.actOrder, !exp1);
            QCOMPARE(e.staticGroups, attn);
            const bool dropped = e.layer == 2 || (e.layer == 3 && !attn) || (e.layer == 1 && e.expert == 2);
            QCOMPARE(e.dropped, dropped);
        }
        // Later rules override fields set by earlier ones.
        Plan q;
        q.rules = {{".*", {}}, {".*down_proj", {}}};
        q.rules[0].set.bits = 2;
        q.rules[1].set.bits = 8;
        for (const PlanEntry& e : expandPlan(q, m_mxCfg))
            QCOMPARE(e.bits, e.name.find("down_proj") != std::string::npos ? int64_t(8) : int64_t(2));
    }

    void gptqBytes()
    {
        // K=256, N=64, b=4, G=128: qweight 32x64 int32 = 8192, qzeros 2x8 int32 = 64,
        // scales 2x64 fp16 = 256, g_idx 256 int32 = 1024.
        QCOMPARE(gptqLinearBytes(256, 64, 4, 128), int64_t(8192 + 64 + 256 + 1024));
        // b=3: qweight 24x64 = 6144, qzeros 2x6 = 48.
        QCOMPARE(gptqLinearBytes(256, 64, 3, 128), int64_t(6144 + 48 + 256 + 1024));
        // G=-1: one group.
        QCOMPARE(gptqLinearBytes(256, 64, 2, -1), int64_t(16 * 64 * 4 + 1 * 4 * 4 + 64 * 2 + 1024));
        // 8 bits, G=32: 8 groups; qzeros 8x16 int32.
        QCOMPARE(gptqLinearBytes(256, 64, 8, 32), int64_t(64 * 64 * 4 + 8 * 16 * 4 + 8 * 64 * 2 + 1024));
        QCOMPARE(gptqLinearBytes(256, 64, 16, 128), int64_t(2 * 256 * 64));

        // Plan size: everything at 16 bits = the bf16 model.
        Plan p;
        p.defaults.bits = 16;
        const PlanSize s = planSize(expandPlan(p, m_dsCfg), m_dsCfg);
        QCOMPARE(s.modelBytes, 2 * parameterCount(m_dsCfg));
        QCOMPARE(s.averageBits, 16.0);
        p.defaults.bits = 4;
        const PlanSize s4 = planSize(expandPlan(p, m_dsCfg), m_dsCfg);
        QCOMPARE(s4.averageBits, 4.0);
        QVERIFY(s4.effectiveBits > 4.0);
        // A dropped expert costs nothing.
        p.droppedExperts = {{1, 0}};
        const PlanSize sd = planSize(expandPlan(p, m_dsCfg), m_dsCfg);
        // gate/up: in 32, out 16; down: in 16, out 32.
        QCOMPARE(s4.linearBytes - sd.linearBytes, 2 * gptqLinearBytes(32, 16, 4, 128) + gptqLinearBytes(16, 32, 4, 128));
    }

    void dynamicExport_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<int>("pattern");
        for (const char* a : {"deepseek", "mixtral"})
            for (int pat = 0; pat < 4; ++pat)
                QTest::newRow(qPrintable(QString("%1/%2").arg(a).arg(pat))) << QString(a) << pat;
    }
    void dynamicExport()
    {
        QFETCH(QString, arch);
        QFETCH(int, pattern);
        const ModelConfig& cfg = arch == "deepseek" ? m_dsCfg : m_mxCfg;
        Plan p;
        p.defaults.bits = 2;
        std::vector<PlanEntry> es = expandPlan(p, cfg);
        std::mt19937 rng(pattern);
        const int64_t widths[] = {2, 3, 4, 8, 16};
        for (PlanEntry& e : es) {
            switch (pattern) {
            case 0: // per-expert: all three linears of an expert share a width
                e.bits = e.expert >= 0 ? widths[(e.layer * 7 + e.expert) % 4] : 4;
                break;
            case 1: // per-layer
                e.bits = widths[e.layer % 5];
                break;
            case 2: // anything goes, including group sizes and sym
                e.bits = widths[rng() % 5];
                e.groupSize = rng() % 2 ? 128 : 32;
                e.sym = rng() % 2;
                break;
            default: // uniform except one linear
                e.bits = e.name == es[3].name ? 8 : 4;
            }
        }
        const std::vector<LinearInfo> all = listLinears(cfg);
        const GptqExport ex = exportGptqDynamic(es, all);
        std::map<std::string, const PlanEntry*> byName;
        for (const PlanEntry& e : es)
            byName[e.name] = &e;
        for (const LinearInfo& li : all) {
            const std::optional<PlanEntry> got = dynamicLookup(ex, li.name);
            auto it = byName.find(li.name);
            if (it == byName.end() || it->second->bits == 16) {
                QVERIFY2(!got, li.name.c_str());
                continue;
            }
            QVERIFY2(got.has_value(), li.name.c_str());
            QCOMPARE(got->bits, it->second->bits);
            QCOMPARE(got->groupSize, it->second->groupSize);
            QCOMPARE(got->sym, it->second->sym);
        }
        // Compact: per-expert and per-layer patterns need far fewer rules than linears.
        if (pattern == 1)
            QVERIFY2(ex.dynamic.size() <= 8, dynamicToJson(ex).c_str());
        if (pattern == 3)
            QVERIFY2(ex.dynamic.size() <= 2, dynamicToJson(ex).c_str()); // the router rule + the one linear
        if (pattern == 0)
            QVERIFY(ex.dynamic.size() < all.size() / 3);
        QVERIFY(dynamicToJson(ex).find("\"-:") != std::string::npos);
    }

    void cli()
    {
        if (!QFileInfo::exists(moewbCli()))
            QSKIP("moewb CLI not built");
        const QString out = m_tmp.filePath("cli-plan.json");
        CliRun r = runCli(moewbCli(), {"plan", m_ds, "--strategy", "attn-ffn", "--bits", "2.5", "--out", out});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY(r.out.contains("average bits"));
        const Plan p = loadPlan(out.toStdString());
        QCOMPARE(p.provenance.strategy, std::string("attn-ffn"));
        QCOMPARE(p.provenance.modelPath, m_ds.toStdString());
        QVERIFY(p.provenance.achievedBytes <= p.provenance.targetBytes);
        r = runCli(moewbCli(), {"plan", "show", out, "--dynamic"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY(r.out.contains("model size"));
        QVERIFY(r.out.contains("\"dynamic\""));
        // Usage errors → 2; a strategy that needs stats without them → 2; no shared experts → 1.
        QCOMPARE(runCli(moewbCli(), {"plan", m_ds, "--strategy", "nope", "--bits", "3", "--out", out}).exitCode, 2);
        QCOMPARE(runCli(moewbCli(), {"plan", m_ds, "--strategy", "frequency", "--bits", "3", "--out", out}).exitCode, 2);
        r = runCli(moewbCli(), {"plan", m_mx, "--strategy", "shared", "--bits", "3", "--out", out});
        QCOMPARE(r.exitCode, 1);
        QVERIFY(r.err.contains("has no shared experts"));
        // An invalid plan: one line naming the file and the JSON path.
        const QString bad = m_tmp.filePath("bad.json");
        writeAll(bad, "{\"format\":\"moewb-plan\",\"version\":1,\"defaults\":{\"bits\":5}}");
        r = runCli(moewbCli(), {"plan", "show", bad, "--model", m_ds});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("$.defaults.bits: bits 5 not in {2,3,4,8,16}"), r.err.constData());
    }

private:
    QTemporaryDir m_tmp;
    QString m_ds, m_mx;
    ModelConfig m_dsCfg, m_mxCfg;
};

QTEST_APPLESS_MAIN(TestPlan)
#include "tst_plan.moc"
