// Package sink publishes Datacore messages to NATS.
//
// It owns three things:
//
//   - the subject rule: every message goes to
//     <prefix>.<sport>.<fixture|venue>.<id>.<kind>, where <kind> is derived from the
//     topic's scope by [KindFromScope] and every token after the prefix is escaped by
//     [EscapeToken];
//   - the message shape: a [Route] is computed once per (stream, topic) and builds each
//     *nats.Msg with the Datacore-* headers, leaving the payload untouched;
//   - delivery into NATS: [Connect] dials with reconnects that never give up, and two
//     [Publisher] implementations, [Core] (at-most-once into core NATS) and [JetStream]
//     (at-least-once: asynchronous publish, bounded in-flight budget, retries with the same
//     Nats-Msg-Id so the server drops duplicates).
//
// Both publishers apply backpressure instead of buffering without bound: Publish blocks
// while the budget is used up, until its context is done.
package sink
