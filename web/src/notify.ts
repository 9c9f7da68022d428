/** Short messages after an action: what happened, or the API's words when it refused. */
import { showFailToast, showSuccessToast } from "vant";
import { Declined } from "./api/client.ts";

export function done(message: string): void {
	showSuccessToast({ message, className: "toast-done" });
}

export function failed(err: unknown): void {
	if (err instanceof Declined) return;
	showFailToast({ message: err instanceof Error ? err.message : String(err), className: "toast-failed", duration: 4000 });
}

/** Runs an action and reports it: `run(() => api.post(…), "Disabled")`. Resolves true when it worked. */
export async function run(action: () => Promise<unknown>, success: string): Promise<boolean> {
	try {
		await action();
		done(success);
		return true;
	} catch (err) {
		failed(err);
		return false;
	}
}
