/**
 * fastest-validator rules as JSON Schema (2020-12, the dialect of OpenAPI 3.1): what the
 * generated API description says a field takes. It reads a rule as Moleculer's registry holds
 * it, locally or sent by another node (where a RegExp arrives as `{}` and a function not at all),
 * so it never assumes more than the rule carries. A `custom` rule says what it takes in `json`.
 */

export type JsonSchema = Record<string, unknown>;
type Rule = string | Record<string, unknown> | Rule[];

/** `"string|optional|min:3"` as the object rule it abbreviates. */
function expand(text: string): Record<string, unknown> {
	const [type, ...flags] = text.split("|");
	const rule: Record<string, unknown> = { type: type?.trim() };
	for (const flag of flags) {
		const [key, value] = flag.split(":").map(part => part.trim());
		if (!key) continue;
		if (value === undefined) rule[key] = true;
		else
			rule[key] = value === "true" ? true : value === "false" ? false : Number.isNaN(Number(value)) ? value : Number(value);
	}
	return rule;
}

function patternOf(pattern: unknown): string | undefined {
	if (typeof pattern === "string") return pattern;
	if (pattern instanceof RegExp) return pattern.source;
	return undefined;
}

function put(schema: JsonSchema, key: string, value: unknown): void {
	if (value !== undefined) schema[key] = value;
}

function stringSchema(rule: Record<string, unknown>): JsonSchema {
	const schema: JsonSchema = { type: "string" };
	put(schema, "minLength", rule.length ?? rule.min ?? (rule.empty === false ? 1 : undefined));
	put(schema, "maxLength", rule.length ?? rule.max);
	put(schema, "pattern", patternOf(rule.pattern));
	if (Array.isArray(rule.enum)) schema.enum = rule.enum;
	return schema;
}

function numberSchema(rule: Record<string, unknown>): JsonSchema {
	const schema: JsonSchema = { type: rule.integer ? "integer" : "number" };
	put(schema, "minimum", rule.min);
	put(schema, "maximum", rule.max);
	if (rule.positive) schema.exclusiveMinimum = 0;
	if (rule.negative) schema.exclusiveMaximum = 0;
	if (rule.equal !== undefined) schema.const = rule.equal;
	return schema;
}

function arraySchema(rule: Record<string, unknown>): JsonSchema {
	const schema: JsonSchema = { type: "array" };
	if (rule.items !== undefined) schema.items = ruleSchema(rule.items as Rule);
	put(schema, "minItems", rule.length ?? rule.min ?? (rule.empty === false ? 1 : undefined));
	put(schema, "maxItems", rule.length ?? rule.max);
	if (rule.unique) schema.uniqueItems = true;
	return schema;
}

function recordSchema(rule: Record<string, unknown>): JsonSchema {
	const schema: JsonSchema = { type: "object" };
	if (rule.key !== undefined) schema.propertyNames = ruleSchema(rule.key as Rule);
	if (rule.value !== undefined) schema.additionalProperties = ruleSchema(rule.value as Rule);
	return schema;
}

/** The schema of one rule, without its `optional` (which belongs to the object holding it). */
function baseSchema(rule: Record<string, unknown>): JsonSchema {
	switch (rule.type) {
		case "string":
			return stringSchema(rule);
		case "number":
			return numberSchema(rule);
		case "boolean":
			return { type: "boolean" };
		case "enum":
			return { enum: Array.isArray(rule.values) ? rule.values : [] };
		case "equal":
			return { const: rule.value };
		case "email":
			return { type: "string", format: "email", ...(rule.max === undefined ? {} : { maxLength: rule.max }) };
		case "url":
			return { type: "string", format: "uri" };
		case "date":
			return { type: "string", format: "date-time" };
		case "array":
			return arraySchema(rule);
		case "record":
			return recordSchema(rule);
		case "object":
			return rule.props ? objectSchema(rule.props as Record<string, Rule>, rule.strict === true) : { type: "object" };
		case "multi":
			return { anyOf: (Array.isArray(rule.rules) ? (rule.rules as Rule[]) : []).map(ruleSchema) };
		case "custom":
			return rule.json && typeof rule.json === "object" ? { ...(rule.json as JsonSchema) } : {};
		default:
			return {};
	}
}

function isOptional(rule: Rule): boolean {
	if (Array.isArray(rule)) return rule.some(isOptional);
	const object = typeof rule === "string" ? expand(rule) : rule;
	return object.optional === true || object.default !== undefined;
}

/** The JSON Schema of a fastest-validator rule. */
export function ruleSchema(rule: Rule): JsonSchema {
	if (Array.isArray(rule)) return { anyOf: rule.map(ruleSchema) };
	const object = typeof rule === "string" ? expand(rule) : rule;
	const schema = baseSchema(object);
	if (object.default !== undefined && typeof object.default !== "function") schema.default = object.default;
	if (object.nullable === true) return { anyOf: [schema, { type: "null" }] };
	return schema;
}

/** An object's schema from its props: the required ones listed, unknown keys refused when strict. */
export function objectSchema(props: Record<string, Rule>, strict: boolean): JsonSchema {
	const properties: Record<string, JsonSchema> = {};
	const required: string[] = [];
	for (const [name, rule] of Object.entries(props)) {
		if (name.startsWith("$$")) continue;
		properties[name] = ruleSchema(rule);
		if (!isOptional(rule)) required.push(name);
	}
	return {
		type: "object",
		properties,
		...(required.length > 0 ? { required } : {}),
		...(strict ? { additionalProperties: false } : {})
	};
}

/** An action's params (`$$strict` and all) as the schema of the object it takes. */
export function paramsSchema(params: Record<string, unknown> | undefined): JsonSchema {
	if (!params) return { type: "object" };
	// `$$strict: "remove"` drops unknown keys rather than refusing them.
	return objectSchema(params as Record<string, Rule>, params.$$strict === true);
}
