/**
 * The web console's build: Vue 3 single-file components and Vant 4, bundled by Vite into
 * `public/` (not committed), which the api service serves. Nothing is fetched from a CDN at run
 * time: fonts, icons and scripts all come from Tern's own origin.
 */
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";
import vue from "@vitejs/plugin-vue";
import { localAssets } from "./local-assets.ts";

export default defineConfig({
	root: fileURLToPath(new URL(".", import.meta.url)),
	base: "/",
	plugins: [vue(), localAssets()],
	// Vite's own static-copy folder would be `web/public`; the console has none.
	publicDir: false,
	build: {
		outDir: fileURLToPath(new URL("../public", import.meta.url)),
		emptyOutDir: true,
		target: "es2022",
		sourcemap: false,
		chunkSizeWarningLimit: 600,
		reportCompressedSize: true
	},
	server: {
		// `npm run ui:dev`: the console with hot reload, the API from a Tern on :3000.
		proxy: {
			"/api": "http://127.0.0.1:3000",
			"/socket.io": { target: "http://127.0.0.1:3000", ws: true }
		}
	}
});
