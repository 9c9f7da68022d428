/**
 * The second confirmation of destructive calls, as a dialog: the API's 202 offer carries a
 * summary of what will happen, which the person reads before confirming. Pass `confirmOffer` as
 * the `confirm` option of a request (`api.delete(path, { confirm: confirmOffer })`).
 */
import { showConfirmDialog } from "vant";
import type { ConfirmationOffer } from "./api/types.ts";

export async function confirmOffer(offer: ConfirmationOffer): Promise<boolean> {
	try {
		await showConfirmDialog({
			title: "Confirm",
			message: offer.summary,
			confirmButtonText: "Yes, go ahead",
			confirmButtonColor: "#cf222e",
			cancelButtonText: "Cancel",
			className: "confirm-dialog"
		});
		return true;
	} catch {
		return false;
	}
}
