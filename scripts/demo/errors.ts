/** A problem the demo can name in one line (a bad environment, a step that did not do what it should). */
export class DemoError extends Error {}
