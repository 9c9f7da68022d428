/**
 * The Secrets kustomize generates (`secretGenerator` of the kustomization), as the validator sees
 * them: one Secret per generator, its values read from its env files. A file that is missing (the
 * real `secrets.env` is never committed) is read from its `.example` instead, so the references
 * to it can still be checked; a real file that still says CHANGE-ME is an error: it would apply a
 * secret everybody knows.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

type Obj = Record<string, unknown>;

export interface GeneratedSecret {
	/** Where it comes from, for the report: `kustomization.yaml (secretGenerator tern-secrets)`. */
	file: string;
	doc: Obj;
}

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** `KEY=VALUE` lines of an env file as kustomize reads them: no quotes, `#` comments, blank lines. */
export function parseEnvFile(text: string): Record<string, string> {
	const values: Record<string, string> = {};
	for (const line of text.split(/\r?\n/)) {
		const trimmed = line.trim();
		if (trimmed === "" || trimmed.startsWith("#")) continue;
		const eq = trimmed.indexOf("=");
		if (eq <= 0) continue;
		values[trimmed.slice(0, eq)] = trimmed.slice(eq + 1);
	}
	return values;
}

/** The generated Secrets of `kustomization` (its parsed YAML) in `dir`; problems go to `errors`. */
export function generatedSecrets(
	dir: string,
	kustomizationFile: string,
	kustomization: unknown,
	errors: string[]
): GeneratedSecret[] {
	if (!isObj(kustomization) || !Array.isArray(kustomization.secretGenerator)) return [];
	const namespace = typeof kustomization.namespace === "string" ? kustomization.namespace : undefined;
	const secrets: GeneratedSecret[] = [];
	for (const generator of kustomization.secretGenerator) {
		if (!isObj(generator) || typeof generator.name !== "string") {
			errors.push(`${kustomizationFile}: a secretGenerator without a name`);
			continue;
		}
		const stringData: Record<string, string> = {};
		for (const env of Array.isArray(generator.envs) ? generator.envs.map(String) : []) {
			const real = join(dir, env);
			const example = `${real}.example`;
			if (existsSync(real)) {
				const values = parseEnvFile(readFileSync(real, "utf8"));
				for (const [key, value] of Object.entries(values))
					if (/CHANGE-ME|REPLACE-ME/.test(value)) errors.push(`${env}: ${key} still holds the example's placeholder`);
				Object.assign(stringData, values);
			} else if (existsSync(example)) Object.assign(stringData, parseEnvFile(readFileSync(example, "utf8")));
			else
				errors.push(
					`${kustomizationFile}: secretGenerator '${generator.name}' reads ${env}, which is not here (nor ${env}.example)`
				);
		}
		for (const literal of Array.isArray(generator.literals) ? generator.literals.map(String) : []) {
			const eq = literal.indexOf("=");
			if (eq > 0) stringData[literal.slice(0, eq)] = literal.slice(eq + 1);
		}
		secrets.push({
			file: `${kustomizationFile} (secretGenerator ${generator.name})`,
			doc: {
				apiVersion: "v1",
				kind: "Secret",
				metadata: { name: generator.name, ...(namespace ? { namespace } : {}) },
				type: typeof generator.type === "string" ? generator.type : "Opaque",
				stringData
			}
		});
	}
	return secrets;
}
