import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
	{ ignores: ["node_modules/", "data/", "bench/results/", "public/", "artifacts/", "agent/dist/"] },
	js.configs.recommended,
	...tseslint.configs.recommended,
	{
		languageOptions: {
			globals: {
				process: "readonly",
				console: "readonly",
				Buffer: "readonly",
				setTimeout: "readonly",
				setInterval: "readonly",
				clearInterval: "readonly",
				clearTimeout: "readonly",
				URL: "readonly",
				fetch: "readonly",
				Headers: "readonly",
				TextEncoder: "readonly"
			}
		},
		rules: {
			"@typescript-eslint/no-explicit-any": "off",
			"@typescript-eslint/no-unused-vars": [
				"error",
				{ argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" }
			],
			"no-constant-condition": ["error", { checkLoops: false }]
		}
	},
	{
		files: ["test/**/*.ts"],
		rules: { "@typescript-eslint/no-non-null-assertion": "off" }
	},
	// Layers point one way: lib/ holds leaves, the composition root (node.ts) sits beside tern.ts,
	// and bench/ may use test/support/ but tests never reach into bench/.
	{
		files: ["lib/**/*.ts"],
		rules: {
			"no-restricted-imports": [
				"error",
				{
					patterns: [
						{
							regex: "(^|/)(services|models|mixins)/|(^|/)(moleculer\\.config|node)\\.ts$",
							message:
								"lib/ holds leaves: it never imports services, models, mixins, the config or the composition root."
						}
					]
				}
			]
		}
	},
	{
		files: ["test/**/*.ts"],
		rules: {
			"no-restricted-imports": [
				"error",
				{
					patterns: [
						{
							regex: "(^|/)bench/",
							message: "Tests use test/support/, which bench/ may import; never bench/ itself."
						}
					]
				}
			]
		}
	}
);
