/**
 * The contracts every service and adapter shares: task states, task bodies and views,
 * principals, event payloads and the socket event maps. Producers and consumers import
 * these types from here so that a change to the wire format is a change in one place.
 */
export * from "./contracts/core.ts";
export * from "./contracts/events.ts";
export * from "./contracts/fleet.ts";
export * from "./contracts/alerts.ts";
export * from "./contracts/access.ts";
export * from "./contracts/security.ts";
export * from "./contracts/console.ts";
export * from "./contracts/faults.ts";
