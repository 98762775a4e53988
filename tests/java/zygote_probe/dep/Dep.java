package dep; public class Dep {}
