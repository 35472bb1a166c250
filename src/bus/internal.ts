// Shared with the layers above (node), not part of the package's API: a topic's number on the
// wire and the topic check. See docs/architecture.md, "Public API and internal barrels".
export { topicIndex, topicAt } from './codec.js';
export { checkTopic } from './topics.js';
