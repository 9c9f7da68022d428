/**
 * Builds the installable agent: every TypeScript file of the agent (cli.ts, sdk/, runners/) to
 * JavaScript in agent/dist/, one file at a time (the root's `tsc --noEmit` is what type-checks
 * them), with relative `.ts` imports rewritten to `.js`. `npm pack` in agent/ runs it first, so
 * the tarball holds plain JavaScript that any Node 20+ runs, from node_modules too.
 *
 *   node agent/build.ts
 */
import { chmodSync, globSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const root = dirname(fileURLToPath(import.meta.url));
const out = join(root, "dist");
const sources = globSync(["cli.ts", "sdk/*.ts", "runners/*.ts"], { cwd: root }).sort();

const options: ts.CompilerOptions = {
	target: ts.ScriptTarget.ES2022,
	module: ts.ModuleKind.ESNext,
	moduleResolution: ts.ModuleResolutionKind.Bundler,
	rewriteRelativeImportExtensions: true,
	verbatimModuleSyntax: true
};

rmSync(out, { recursive: true, force: true });
for (const source of sources) {
	const { outputText, diagnostics } = ts.transpileModule(readFileSync(join(root, source), "utf8"), {
		compilerOptions: options,
		fileName: source,
		reportDiagnostics: true
	});
	if (diagnostics?.length) {
		const text = ts.formatDiagnostics(diagnostics, {
			getCanonicalFileName: name => name,
			getCurrentDirectory: () => root,
			getNewLine: () => "\n"
		});
		process.stderr.write(text);
		process.exit(1);
	}
	if (/from "\.\.\/\.\.\//.test(outputText)) {
		process.stderr.write(`${source}: imports from outside agent/ at run time; only \`import type\` may\n`);
		process.exit(1);
	}
	const target = join(out, source.replace(/\.ts$/, ".js"));
	mkdirSync(dirname(target), { recursive: true });
	writeFileSync(target, source === "cli.ts" ? `#!/usr/bin/env node\n${outputText}` : outputText);
	if (source === "cli.ts") chmodSync(target, 0o755);
}
console.log(`agent: ${sources.length} files built into ${relative(process.cwd(), out) || "."}`);
