import Testing

@Test func placeholder_LockedTests() { #expect(Bool(true)) }
