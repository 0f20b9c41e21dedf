// The kvsl VS Code extension: starts `kvsl lsp` over stdio for `.kvs` files.
// Highlighting comes from syntaxes/kvs.tmLanguage.json; everything else from the server.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("kvsl");
  const [command, ...args] = config.get("server.command", ["kvsl", "lsp"]);
  const debounce = String(config.get("server.debounceMs", 15));
  const executable = {
    command,
    args: [...args, "--debounce-ms", debounce],
    transport: TransportKind.stdio,
  };
  client = new LanguageClient(
    "kvsl",
    "kvsl language server",
    { run: executable, debug: executable },
    {
      documentSelector: [{ scheme: "file", language: "kvs" }],
      synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.{kvs,j2,jsonl}") },
    }
  );
  // `kvsl: Explain diagnostic code` — the same text as `kvsl explain CODE`.
  context.subscriptions.push(
    vscode.commands.registerCommand("kvsl.showExplanation", async (code) => {
      code = code || (await vscode.window.showInputBox({ prompt: "Diagnostic code, e.g. KVS104" }));
      if (!code) return;
      const text = await client.sendRequest("workspace/executeCommand", {
        command: "kvsl.explain",
        arguments: [code],
      });
      const doc = await vscode.workspace.openTextDocument({ language: "markdown", content: text || `unknown code ${code}` });
      await vscode.window.showTextDocument(doc, { preview: true });
    })
  );
  client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
