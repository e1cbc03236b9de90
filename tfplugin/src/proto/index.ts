/** The tfplugin6 messages and their codec, for tests and tools that speak the protocol directly. */
export * from './messages.js';
export { decode, encode, type Field, type FieldType, type MessageType } from './protobuf.js';
