#!/usr/bin/env node
// Plain JavaScript, so that it runs on any Node: Tern's own files are TypeScript, which Node runs
// from 22.18 (type stripping on by default); an older Node would fail on the first import with
// ERR_UNKNOWN_FILE_EXTENSION instead of saying what to do.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
	process.stderr.write(
		`Tern needs Node.js 22.18 or newer; this is ${process.version}.\n` +
			"Run it through npm (npm start, npm test): `npm install` brings Node 24 as a dependency and npm uses it.\n" +
			"Or install Node 24 (the version in .nvmrc: nvm install).\n"
	);
	process.exit(1);
}
