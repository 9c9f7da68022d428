/** The channel types: `resolve(type)` gives the one that delivers it, and refuses any other name. */
import { CHANNEL_TYPES, type ChannelType } from "../../../lib/contracts.ts";
import { Errors } from "../../../lib/errors.ts";
import type { Channel } from "./base.ts";
import { EmailChannel } from "./email.ts";
import { SmsChannel } from "./sms.ts";
import { WebhookChannel } from "./webhook.ts";

export { Channel, DeliveryError, REDACTED } from "./base.ts";

const CHANNELS: Record<ChannelType, Channel> = {
	webhook: new WebhookChannel() as Channel,
	email: new EmailChannel() as Channel,
	sms: new SmsChannel() as Channel
};

export function resolve(type: string): Channel {
	if (!Object.hasOwn(CHANNELS, type)) {
		const message = `The 'type' field value '${type}' is not one of the channel types: ${CHANNEL_TYPES.join(", ")}`;
		throw Errors.validation(message, [
			{ type: "enumValue", field: "type", message, actual: type, expected: CHANNEL_TYPES.join(", ") }
		]);
	}
	return CHANNELS[type as ChannelType];
}
