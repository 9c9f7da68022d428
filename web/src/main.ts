/** The console's entry: the session from storage, the router, the live channel, then the app. */
import { createApp, watch } from "vue";
import "vant/lib/index.css";
import "./styles.css";
import App from "./App.vue";
import { router } from "./router.ts";
import { restoreSession, session } from "./session.ts";
import { connectLive, disconnectLive } from "./live/connection.ts";

restoreSession(() => {
	const here = router.currentRoute.value;
	if (!here.meta.open) void router.replace({ name: "login", query: { next: here.fullPath, expired: "1" } });
});

watch(
	() => session.token,
	token => (token ? connectLive(token) : disconnectLive()),
	{ immediate: true }
);

createApp(App).use(router).mount("#app");
