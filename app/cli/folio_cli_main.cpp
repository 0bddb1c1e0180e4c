// SPDX-License-Identifier: GPL-3.0-or-later
// folio-cli: dispatches to the subcommand named by the first argument (table below).
#include <QCoreApplication>
#include <QStringList>

#include <cstdio>
#include <span>

#include "cli_commands.h"

namespace {

struct Subcommand {
    const char* name;
    const char* summary;
    int (*run)(const QStringList& args);
};

constexpr Subcommand kSubcommands[] = {
    {"ingest", "read sources (PDF, repository, text) and report pages, files, tokens, skips",
     folio::cli::runIngestCommand},
#ifdef FOLIO_CLI_HAVE_SESSION
    {"session", "create, inspect and ask in sessions", folio::cli::runSessionCommand},
#endif
};

void printUsage(std::FILE* out) {
    std::fprintf(out, "usage: folio-cli COMMAND [ARGS...]\n\ncommands:\n");
    for (const Subcommand& c : kSubcommands)
        std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
    std::fprintf(out, "\n'folio-cli COMMAND --help' describes a command.\n");
}

}  // namespace

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(QStringLiteral("folio-cli"));
    QStringList args = QCoreApplication::arguments();
    args.removeFirst();
    if (args.isEmpty() || args.front() == QLatin1String("--help") ||
        args.front() == QLatin1String("-h")) {
        printUsage(args.isEmpty() ? stderr : stdout);
        return args.isEmpty() ? 2 : 0;
    }
    const QString name = args.takeFirst();
    for (const Subcommand& c : kSubcommands) {
        if (name == QLatin1String(c.name))
            return c.run(args);
    }
    std::fprintf(stderr, "folio-cli: unknown command '%s'\n\n", qPrintable(name));
    printUsage(stderr);
    return 2;
}
