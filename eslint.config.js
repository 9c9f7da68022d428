import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
	{ ignores: ["node_modules/", "data/", "bench/results/", "public/vendor/"] },
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
	}
);
