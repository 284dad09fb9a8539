//! guidebot: answers questions about the hub's career guides, with citations.
