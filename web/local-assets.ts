/**
 * A Vite plugin that keeps every asset of the console on Tern's own origin. Vant's icon font is
 * declared as an inline woff2 with a fallback on a CDN; the inline font becomes a hashed file of
 * the bundle (so the CSP needs no `data:` fonts) and the CDN fallback is dropped. The build fails
 * if any stylesheet still points at another host: machines that run Tern may have no internet.
 */
import { createHash } from "node:crypto";
import type { Plugin } from "vite";

const INLINE_FONT = /url\(data:font\/woff2;charset=utf-8;base64,([A-Za-z0-9+/=]+)\)\s*format\(["']woff2["']\)/g;
const REMOTE_FALLBACK = /,\s*url\((?:https?:)?\/\/[^)]+\)\s*format\(["'][a-z0-9]+["']\)/g;
const REMOTE_URL = /url\(\s*["']?(?:https?:)?\/\/[^)]*\)/;

export function localAssets(): Plugin {
	return {
		name: "tern-local-assets",
		apply: "build",
		generateBundle(_options, bundle) {
			for (const asset of Object.values(bundle)) {
				if (asset.type !== "asset" || !asset.fileName.endsWith(".css")) continue;
				let css = String(asset.source);
				css = css.replace(INLINE_FONT, (_match, base64: string) => {
					const data = Buffer.from(base64, "base64");
					const hash = createHash("sha256").update(data).digest("base64url").slice(0, 10);
					const fileName = `assets/icons-${hash}.woff2`;
					if (!bundle[fileName]) this.emitFile({ type: "asset", fileName, source: data });
					return `url(/${fileName}) format("woff2")`;
				});
				css = css.replace(REMOTE_FALLBACK, "");
				const remote = REMOTE_URL.exec(css);
				if (remote) this.error(`${asset.fileName} loads from another host: ${remote[0].slice(0, 120)}`);
				asset.source = css;
			}
		}
	};
}
