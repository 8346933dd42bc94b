// Integration tests start real brokers, Kafka-protocol logs, browsers and processes: on the
// 2-core machines they run on, running test classes side by side makes the machine, not the
// broker, the thing under test. One class at a time keeps them deterministic.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
