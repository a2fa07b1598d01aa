public enum Compile {}
