// SPDX-License-Identifier: MIT
// `moewb info` on random checkpoints of every architecture: the JSON facts against what the
// independent generator wrote (parameters counted from the safetensors file by Python).
#include "../engine/testutil.h"

#include <QTemporaryDir>
#include <QtTest>

using namespace moewb::test;

class TestCliInfo : public QObject {
    Q_OBJECT
private slots:
    void describesEveryArchitecture_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::addColumn<QString>("hfClass");
        QTest::addColumn<int>("experts");
        QTest::newRow("mixtral") << "mixtral" << "MixtralForCausalLM" << 8;
        QTest::newRow("qwen2_moe") << "qwen2_moe" << "Qwen2MoeForCausalLM" << 12;
        QTest::newRow("qwen3_moe") << "qwen3_moe" << "Qwen3MoeForCausalLM" << 8;
        QTest::newRow("deepseek") << "deepseek" << "DeepseekForCausalLM" << 12;
        QTest::newRow("olmoe") << "olmoe" << "OlmoeForCausalLM" << 8;
        QTest::newRow("llama") << "llama" << "LlamaForCausalLM" << 0;
    }

    void describesEveryArchitecture()
    {
        QFETCH(QString, arch);
        QFETCH(QString, hfClass);
        QFETCH(int, experts);
        QTemporaryDir tmp;
        const QString dir = tmp.path() + "/m";
        runPython({sourcePath("tests/reference/gen_random_model.py"), arch, dir, "--seed", "2", "--dtype", "bf16"});
        // Independent count: sum of numel over the file's tensors, read by the NumPy reader.
        const qint64 params = runPython({"-c",
                                         "import sys; sys.path.insert(0, sys.argv[1]); import safetensors_np as s; "
                                         "t, d, m = s.load(sys.argv[2]); print(sum(v.size for v in t.values()))",
                                         sourcePath("tests/reference"), dir + "/model.safetensors"})
                                  .trimmed()
                                  .toLongLong();
        const CliRun r = runCli(moewbCli(), {"info", dir, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QJsonObject j = QJsonDocument::fromJson(r.out).object();
        QCOMPARE(j["architecture"].toString(), hfClass);
        QCOMPARE(j["parameters_config"].toInteger(), params);
        QCOMPARE(j["checkpoint"].toObject()["parameters"].toInteger(), params);
        QCOMPARE(j["checkpoint"].toObject()["bytes"].toInteger(), 2 * params); // all bf16
        QVERIFY(j["check"].toObject()["ok"].toBool());
        if (experts > 0)
            QCOMPARE(j["experts"].toObject()["routed"].toInt(), experts);
        else
            QVERIFY(j["experts"].isNull());

        const CliRun table = runCli(moewbCli(), {"info", dir});
        QCOMPARE(table.exitCode, 0);
        QVERIFY(table.out.contains(hfClass.toUtf8()));
    }

    void wrongShapeIsAnError()
    {
        QTemporaryDir tmp;
        const QString dir = tmp.path() + "/m";
        runPython({sourcePath("tests/reference/gen_random_model.py"), "mixtral", dir, "--seed", "2"});
        runPython({"-c",
                   "import sys; sys.path.insert(0, sys.argv[1]); import safetensors_np as s; "
                   "t, d, m = s.load(sys.argv[2]); n = 'model.layers.2.block_sparse_moe.experts.3.w2.weight'; "
                   "t[n] = t[n][:, :-1].copy(); s.save(sys.argv[2], t, d, m)",
                   sourcePath("tests/reference"), dir + "/model.safetensors"});
        const CliRun r = runCli(moewbCli(), {"info", dir});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("model.layers.2.block_sparse_moe.experts.3.w2.weight") && r.err.count('\n') == 1,
                 r.err.constData());
    }

    void truncatedCheckpointIsAnError()
    {
        QTemporaryDir tmp;
        const QString dir = tmp.path() + "/m";
        runPython({sourcePath("tests/reference/gen_random_model.py"), "olmoe", dir, "--seed", "2"});
        QFile f(dir + "/model.safetensors");
        QVERIFY(f.open(QIODevice::ReadWrite));
        QVERIFY(f.resize(f.size() - 100));
        f.close();
        for (const char* cmd : {"info", "eval"}) {
            QStringList args{cmd, dir};
            if (QByteArray(cmd) == "eval")
                args << "--ppl" << sourcePath("README.md");
            const CliRun r = runCli(moewbCli(), args);
            QCOMPARE(r.exitCode, 1);
            // Progress lines may precede it on stderr; the error itself is the last, single line.
            const QList<QByteArray> lines = r.err.trimmed().split('\n');
            QVERIFY2(lines.last().startsWith("moewb: error: ") && lines.last().contains("model.safetensors")
                         && lines.last().contains("truncated"),
                     r.err.constData());
        }
    }
};

QTEST_APPLESS_MAIN(TestCliInfo)
#include "tst_cli_info.moc"
